#!/usr/bin/env node
// The real Jitsi Meet client library (lib-jitsi-meet, a Dec 2021 build) in headless Chromium
// against jicofo, a private Prosody and the bridge simulator (jvb-sim: signaling only, no media).
//
// Usage: node tests/browser/run.mjs        (scripts/browser-test.sh installs what it needs first)
//
// Environment:
//   LJM_BUNDLE     path of lib-jitsi-meet.min.js (default <repo>/tmp/browser-cache/package/lib-jitsi-meet.min.js)
//   CHROMIUM       browser executable (default /usr/bin/chromium)
//   ARTIFACTS      where stanzas, events, console logs and server logs are saved
//                  (default <repo>/tmp/browser-artifacts/<time>)
//   LOCAL_DIR      deployment directory for scripts/run-local.sh (default ARTIFACTS/deployment)
//   ROUNDS         comma-separated source-name settings to run (default "0,1")
//   JICOFO_MODE    how the deployment is laid out and configured (scripts/run-local.sh): flags
//                  (default), seed-2020 (2020-era config files, component), client-proxy (current
//                  Debian layout, jicofo --config=jicofo.conf); checked against jicofo's /stats
//
// For each round (without, then with the library's sourceNameSignaling flag) three participants
// join one room and the runner checks, each as one PASS/FAIL line:
//   * each reaches CONFERENCE_JOINED and sees the two others (and not the focus) as participants;
//     exactly one, the first, ends up moderator;
//   * the moderator turns on AV moderation of audio (enableAVModeration): everyone sees
//     AV_MODERATION_CHANGED, the two others are muted by the focus (mute IQ, local track muted)
//     and force-muted at the bridge, the moderator is not; an approved participant's unmute lifts
//     its force-mute, the other stays force-muted; after disableAVModeration the other's unmute
//     lifts its own (moderation.md §1, §2);
//   * each receives a session-initiate from the focus and answers with session-accept, which the
//     focus acknowledges (iq result) and forwards to the bridge: the simulator's record holds a
//     conference-modify for that endpoint with the DTLS fingerprint and the SSRCs of the accept;
//   * each gets remote audio and video tracks (TRACK_ADDED) of both other participants (with the
//     flag on, named <endpoint>-a0 / -v0); each one's ICE candidates (transport-info) reach the bridge;
//   * when the moderator (the first) leaves, the other two see USER_LEFT and drop its sources (the
//     focus sends no source-remove for an occupant who left), the bridge is told to expire its
//     endpoint, and exactly one of the two others becomes moderator;
//   * no media flows, so ICE fails ~15 s in and the library asks for a restart (session-terminate
//     restart=true): the focus re-invites each, the new session-accept is acknowledged, and the two
//     end with each other's current sources, nothing stale, nothing of the leaver.
// It ends with "N passed, M failed" and exits non-zero when anything failed.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const artifacts = path.resolve(process.env.ARTIFACTS || path.join(repo, 'tmp', 'browser-artifacts', stamp));
const localDir = path.resolve(process.env.LOCAL_DIR || path.join(artifacts, 'deployment'));
const bundle = path.resolve(process.env.LJM_BUNDLE
    || path.join(repo, 'tmp', 'browser-cache', 'package', 'lib-jitsi-meet.min.js'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const rounds = (process.env.ROUNDS || '0,1').split(',').map(s => s.trim() === '1');
const TOTAL_TIMEOUT_MS = 240_000;

fs.mkdirSync(artifacts, { recursive: true });

// ---------------------------------------------------------------------------------------------
// results

const results = [];
function check(name, ok, detail = '') {
    results.push({ name, ok: Boolean(ok), detail });
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${!ok && detail ? ` -- ${detail}` : ''}`);

    return Boolean(ok);
}
const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = msg => console.log(`browser-test: ${msg}`);

// ---------------------------------------------------------------------------------------------
// cleanup: everything started here is stopped here, also on a signal or a fatal error

const cleanups = [];
let cleaning = null;
function cleanup() {
    if (!cleaning) {
        cleaning = (async () => {
            for (const f of cleanups.reverse()) {
                try {
                    await f();
                } catch (e) {
                    console.error(`browser-test: cleanup: ${e.message}`);
                }
            }
        })();
    }

    return cleaning;
}
for (const sig of [ 'SIGINT', 'SIGTERM', 'SIGHUP' ]) {
    process.on(sig, async () => {
        console.error(`browser-test: ${sig}, cleaning up`);
        await cleanup();
        process.exit(130);
    });
}

function run(cmd, args, env) {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: [ 'ignore', 'pipe', 'pipe' ] });
        let out = '';
        child.stdout.on('data', d => {
            out += d;
        });
        child.stderr.on('data', d => {
            out += d;
        });
        child.on('error', reject);
        child.on('close', code => resolve({ code, out }));
    });
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = http.createServer();
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
        s.on('error', reject);
    });
}

// ---------------------------------------------------------------------------------------------
// deployment: scripts/run-local.sh (Prosody, jvb-sim, jicofo) in a private directory

async function startDeployment() {
    const restPort = await freePort();
    const env = { LOCAL_DIR: localDir, REST_PORT: String(restPort), RUST_LOG: process.env.RUST_LOG || 'debug' };
    cleanups.push(async () => {
        const r = await run(path.join(repo, 'scripts', 'run-local.sh'), [ '--stop' ], env);
        log(`deployment stopped (${r.out.trim().split('\n').pop()})`);
    });
    log(`starting the deployment in ${localDir}`);
    const r = await run(path.join(repo, 'scripts', 'run-local.sh'), [], env);
    if (r.code !== 0) {
        throw new Error(`scripts/run-local.sh failed (${r.code}):\n${r.out}`);
    }
    const vars = {};
    for (const line of fs.readFileSync(path.join(localDir, 'prosody.env'), 'utf8').split('\n')) {
        const m = /^export ([A-Z0-9_]+)='(.*)'$/.exec(line);
        if (m) {
            vars[m[1]] = m[2];
        }
    }
    for (const k of [ 'WEBSOCKET_URL', 'XMPP_DOMAIN', 'XMPP_MUC_DOMAIN', 'FOCUS_COMPONENT' ]) {
        if (!vars[k]) {
            throw new Error(`${k} missing from ${localDir}/prosody.env`);
        }
    }

    // The mode the deployment was asked for is the mode jicofo runs in.
    const mode = process.env.JICOFO_MODE || 'flags';
    const stats = await new Promise((resolve, reject) => {
        http.get(`http://127.0.0.1:${restPort}/stats`, res => {
            let body = '';
            res.on('data', d => {
                body += d;
            });
            res.on('end', () => resolve(JSON.parse(body)));
        }).on('error', reject);
    });
    const want = mode === 'client-proxy' ? 'client_only' : 'component_and_client';
    check(`[${mode}] jicofo runs in ${want} mode`, stats.xmpp && stats.xmpp.mode === want, JSON.stringify(stats.xmpp));

    return {
        serviceUrl: vars.WEBSOCKET_URL,
        domain: vars.XMPP_DOMAIN,
        muc: vars.XMPP_MUC_DOMAIN,
        focus: vars.FOCUS_COMPONENT,
        record: path.join(localDir, 'jvb-sim.jsonl'),
        jicofoLog: path.join(localDir, 'jicofo.log')
    };
}

// ---------------------------------------------------------------------------------------------
// the static page server (127.0.0.1 only)

async function startServer() {
    const files = {
        '/': [ path.join(here, 'page', 'index.html'), 'text/html' ],
        '/index.html': [ path.join(here, 'page', 'index.html'), 'text/html' ],
        '/participant.js': [ path.join(here, 'page', 'participant.js'), 'text/javascript' ],
        '/jquery.min.js': [ path.join(here, 'node_modules', 'jquery', 'dist', 'jquery.min.js'), 'text/javascript' ],
        '/lib-jitsi-meet.min.js': [ bundle, 'text/javascript' ]
    };
    for (const [ p, [ f ] ] of Object.entries(files)) {
        if (!fs.existsSync(f)) {
            throw new Error(`${p}: ${f} is missing (run scripts/browser-test.sh, which fetches it)`);
        }
    }
    const server = http.createServer((req, res) => {
        const pathname = new URL(req.url, 'http://x').pathname;
        if (pathname === '/favicon.ico') {
            res.writeHead(204).end();

            return;
        }
        const entry = files[pathname];
        if (!entry) {
            res.writeHead(404).end();

            return;
        }
        res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' });
        fs.createReadStream(entry[0]).pipe(res);
    });
    await new Promise((resolve, reject) => {
        server.on('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    cleanups.push(() => new Promise(r => {
        server.closeAllConnections();
        server.close(() => r());
    }));

    return server.address().port;
}

// ---------------------------------------------------------------------------------------------
// stanza analysis (in Node, with regular expressions on the raw XML strings)

function attr(tag, name) {
    const m = new RegExp(`\\s${name}=(["'])(.*?)\\1`).exec(tag);

    return m ? m[2] : undefined;
}

/** Split raw websocket frames into top-level stanzas (each frame holds one in XMPP over websocket). */
function jingleOf(stanzas) {
    const out = [];
    for (const s of stanzas) {
        const iq = /^<iq\b[^>]*>/.exec(s.xml);
        if (!iq) {
            continue;
        }
        const jingle = /<jingle\b[^>]*>/.exec(s.xml);
        out.push({
            dir: s.dir,
            t: s.t,
            id: attr(iq[0], 'id'),
            type: attr(iq[0], 'type'),
            from: attr(iq[0], 'from'),
            to: attr(iq[0], 'to'),
            action: jingle ? attr(jingle[0], 'action') : undefined,
            xml: s.xml
        });
    }

    return out;
}

function ssrcsOf(xml) {
    const set = new Set();
    for (const m of xml.matchAll(/<source\b[^>]*\sssrc=["'](\d+)["']/g)) {
        set.add(m[1]);
    }

    return [ ...set ];
}

/** ICE candidates as "ip:port/protocol". */
function candidatesOf(xml) {
    return [ ...xml.matchAll(/<candidate\b[^>]*>/g) ]
        .map(m => `${attr(m[0], 'ip')}:${attr(m[0], 'port')}/${attr(m[0], 'protocol')}`);
}

function fingerprintsOf(xml) {
    return [ ...xml.matchAll(/<fingerprint\b[^>]*>([^<]+)<\/fingerprint>/g) ].map(m => m[1].trim());
}

/** SSRCs a participant announced: its session-accepts and source-adds, all of them. */
function ownSsrcs(T) {
    const set = new Set();
    for (const j of jingleOf(T.stanzas)) {
        if (j.dir === 'out' && (j.action === 'session-accept' || j.action === 'source-add')) {
            ssrcsOf(j.xml).forEach(x => set.add(x));
        }
    }

    return [ ...set ];
}

/** SSRCs of each participant's session-accepts, latest last: [{audio: [...], video: [...]}]. */
function acceptsByMedia(T) {
    return jingleOf(T.stanzas).filter(j => j.dir === 'out' && j.action === 'session-accept').map(j => {
        const out = { audio: [], video: [] };
        for (const m of j.xml.matchAll(/<content\b[^>]*>[\s\S]*?<\/content>/g)) {
            const name = attr(m[0].slice(0, m[0].indexOf('>') + 1), 'name');
            if (out[name]) {
                out[name] = ssrcsOf(m[0]);
            }
        }

        return out;
    });
}

/** conference-modify requests the simulator received, as raw XML strings. */
function colibriReceived(record) {
    let text = '';
    try {
        text = fs.readFileSync(record, 'utf8');
    } catch (e) {
        return [];
    }
    const out = [];
    for (const line of text.split('\n')) {
        try {
            const v = JSON.parse(line);
            if (v.dir === 'in' && v.kind === 'colibri' && typeof v.xml === 'string') {
                out.push(v.xml);
            }
        } catch (e) { /* a partial last line */ }
    }

    return out;
}

/** The <endpoint id=ep> elements in the simulator's received requests (raw XML). */
function colibriEndpoints(record, ep) {
    const out = [];
    for (const xml of colibriReceived(record)) {
        for (const m of xml.matchAll(/<endpoint\b[^>]*?(?:\/>|>[\s\S]*?<\/endpoint>)/g)) {
            if (attr(m[0].slice(0, m[0].indexOf('>') + 1), 'id') === ep) {
                out.push(m[0]);
            }
        }
    }

    return out;
}

/** `{audio, video}` of each <force-mute> the simulator received for endpoint ep, in order. */
function forceMutes(record, ep) {
    return colibriEndpoints(record, ep).flatMap(e => {
        const m = /<force-mute\b[^>]*>/.exec(e);

        return m ? [ { audio: attr(m[0], 'audio') === 'true', video: attr(m[0], 'video') === 'true' } ] : [];
    });
}

/** The latest force-mute of endpoint ep for audio (false when it never had one). */
function audioForceMuted(record, ep) {
    const all = forceMutes(record, ep);

    return all.length > 0 && all[all.length - 1].audio;
}

/** Mute IQs (`set`, namespace jitmeet/<type>) in a participant's stanzas, with their answer. */
function muteIqs(T, dir, type) {
    const iqs = jingleOf(T.stanzas);

    return iqs.filter(x => x.dir === dir && x.type === 'set'
        && new RegExp(`<mute\\b[^>]*xmlns=["']http://jitsi.org/jitmeet/${type}["']`).test(x.xml))
        .map(x => {
            const m = /<mute\b[^>]*>([^<]*)<\/mute>/.exec(x.xml);
            const answer = iqs.find(y => y.dir !== dir && y.id === x.id && (y.type === 'result' || y.type === 'error'));

            return { ...x, value: m ? m[1] : undefined, answer: answer && answer.type };
        });
}

// ---------------------------------------------------------------------------------------------
// participants

async function waitFor(what, f, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
        try {
            last = await f();
            if (last) {
                return last;
            }
        } catch (e) {
            last = undefined;
        }
        await sleep(100);
    }

    return last;
}

async function openParticipant(browser, port, dep, room, nick, sourceNames) {
    // Each participant is its own browser context (cookies, storage, sockets), like
    // separate users: in one shared context Chromium held the third participant's
    // websocket behind idle pooled sockets to the same host for 60 s.
    const context = await browser.newContext();
    const page = await context.newPage();
    const consoleLines = [];
    page.on('console', m => consoleLines.push(`${new Date().toISOString()} [${m.type()}] ${m.text()}`));
    page.on('pageerror', e => consoleLines.push(`${new Date().toISOString()} [pageerror] ${e.stack || e}`));
    const qs = new URLSearchParams({
        serviceUrl: dep.serviceUrl,
        domain: dep.domain,
        muc: dep.muc,
        focus: dep.focus,
        room,
        nick,
        sourceNames: sourceNames ? '1' : '0'
    });

    // Each participant has its own origin, so local storage (the library's ids) does not collide.
    await page.goto(`http://${nick}.localhost:${port}/?${qs}`);

    return { nick, page, consoleLines, state: async () => page.evaluate(() => window.T) };
}

async function saveParticipant(dir, p) {
    let T = null;
    try {
        T = await p.page.evaluate(() => window.T);
    } catch (e) {
        T = null;
    }
    fs.writeFileSync(path.join(dir, `${p.nick}-console.log`), `${p.consoleLines.join('\n')}\n`);
    if (!T) {
        return;
    }
    fs.writeFileSync(path.join(dir, `${p.nick}-events.json`), JSON.stringify({
        cfg: T.cfg, myId: T.myId, role: T.role, errors: T.errors, events: T.events,
        remoteTracks: T.remoteTracks, usersLeft: T.usersLeft
    }, null, 1));
    const lines = T.stanzas.map(s => `<!-- ${s.dir === 'in' ? 'RECV' : 'SENT'} ${new Date(s.t).toISOString()} -->\n${s.xml}`);
    fs.writeFileSync(path.join(dir, `${p.nick}-stanzas.xml`), `${lines.join('\n')}\n`);
    const jingle = jingleOf(T.stanzas).filter(j => j.action || j.xml.includes('jingle'));
    fs.writeFileSync(path.join(dir, `${p.nick}-jingle.xml`),
        `${jingle.map(j => `<!-- ${j.dir === 'in' ? 'RECV' : 'SENT'} ${j.action || j.type} -->\n${j.xml}`).join('\n')}\n`);
}

async function runRound(port, dep, sourceNames) {
    const tag = `[${process.env.JICOFO_MODE || 'flags'}] sourceNames=${sourceNames ? 'on' : 'off'}`;
    const room = `browser-${sourceNames ? 'sn' : 'plain'}-${Math.random().toString(36).slice(2, 8)}`;
    const roundDir = path.join(artifacts, `round-${sourceNames ? 'source-names' : 'plain'}`);
    fs.mkdirSync(roundDir, { recursive: true });
    const failedBefore = results.filter(r => !r.ok).length;
    log(`round ${tag}: room ${room}@${dep.muc}`);

    const browser = await chromium.launch({
        executablePath: chromiumPath,
        headless: true,
        args: [
            '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
            // Every participant's page runs at full speed, visible or not: Chromium
            // otherwise throttles the timers of background pages.
            '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
            '--disable-backgrounding-occluded-windows',
            // *.localhost goes to 127.0.0.1 only.
            '--host-resolver-rules=MAP *.localhost 127.0.0.1'
        ]
    });
    const closeContext = async () => {
        await browser.close().catch(() => {});
    };
    cleanups.push(closeContext);
    const ps = [];
    try {
        // The first participant joins alone (so it is the one the focus makes moderator).
        ps.push(await openParticipant(browser, port, dep, room, 'p1', sourceNames));
        await waitFor('p1 joined', async () => (await ps[0].state()).joined, 20_000);
        ps.push(await openParticipant(browser, port, dep, room, 'p2', sourceNames));
        ps.push(await openParticipant(browser, port, dep, room, 'p3', sourceNames));

        const states = {};
        for (const p of ps) {
            const T = await waitFor(`${p.nick} joined`, async () => {
                const s = await p.state();

                return s && s.joined ? s : null;
            }, 20_000);
            states[p.nick] = T || await p.state();
            check(`${tag} ${p.nick} CONFERENCE_JOINED`, T && T.joined,
                `events: ${(states[p.nick]?.events || []).map(e => e.name).join(',')}; errors: ${states[p.nick]?.errors}`);
        }
        const ids = Object.fromEntries(ps.map(p => [ p.nick, states[p.nick]?.myId ]));

        // Remote tracks: audio and video of both others, for each participant.
        for (const p of ps) {
            const others = ps.filter(o => o !== p).map(o => ids[o.nick]);
            const want = others.flatMap(id => [ `${id}/audio`, `${id}/video` ]);
            const have = async () => {
                const s = await p.state();
                const got = new Set(s.remoteTracks.map(t => `${t.participant}/${t.type}`));

                return want.every(w => got.has(w)) ? s : null;
            };
            const T = await waitFor(`${p.nick} remote tracks`, have, 20_000);
            const s = T || await p.state();
            check(`${tag} ${p.nick} has remote audio+video of both others (TRACK_ADDED)`, T,
                `want ${want.join(' ')}; got ${s.remoteTracks.map(t => `${t.participant}/${t.type}`).join(' ')}`);
            if (sourceNames && T) {
                const named = s.remoteTracks.filter(t => others.includes(t.participant));
                const okNames = named.every(t => typeof t.sourceName === 'string'
                    && t.sourceName.startsWith(`${t.participant}-${t.type === 'audio' ? 'a' : 'v'}`));
                check(`${tag} ${p.nick} remote tracks carry source names (<endpoint>-a0/-v0)`, okNames,
                    named.map(t => `${t.participant}/${t.type}=${t.sourceName}`).join(' '));
            }
        }

        // Each sees exactly the two others as participants: the focus is recognised as the focus
        // (its occupant's real JID matches the conference answer's focusjid) and not listed.
        for (const p of ps) {
            const others = ps.filter(o => o !== p).map(o => ids[o.nick]).sort();
            const seen = [ ...new Set((await p.state()).usersJoined) ].sort();
            check(`${tag} ${p.nick} sees exactly the two others as participants (USER_JOINED), not the focus`,
                JSON.stringify(seen) === JSON.stringify(others), `seen ${seen}; others ${others}`);
        }

        // Roles: exactly one moderator, the first. The grant may follow the join by a moment.
        await waitFor('p1 moderator', async () => (await ps[0].state()).role === 'moderator', 5_000);
        await sleep(500);
        const roles = {};
        for (const p of ps) {
            roles[p.nick] = (await p.state()).role;
        }
        check(`${tag} exactly one moderator, the first (p1)`,
            roles.p1 === 'moderator' && roles.p2 !== 'moderator' && roles.p3 !== 'moderator',
            JSON.stringify(roles));

        // Recording (issue #13): the moderator's startRecording through the focus to the Jibri
        // simulator; everyone sees RECORDER_STATE_CHANGED on, then off after stopRecording.
        {
            const t0 = Date.now();
            let sid = null;
            try {
                sid = await ps[0].page.evaluate(() => window.startRecording());
            } catch (e) {
                check(`${tag} p1 startRecording resolves`, false, String(e));
            }
            if (sid) {
                const seen = st => async () => {
                    for (const p of ps) {
                        const r = (await p.state()).recorder || [];
                        if (!r.some(x => x.id === sid && x.status === st)) {
                            return null;
                        }
                    }

                    return true;
                };
                const on = await waitFor('recording on', seen('on'), 10_000);
                check(`${tag} startRecording from p1: everyone sees the recording on (${Date.now() - t0} ms)`, on,
                    JSON.stringify(await ps[1].state().then(s => s.recorder)));
                const t1 = Date.now();
                await ps[0].page.evaluate(id => window.stopRecording(id), sid).catch(e => check(`${tag} p1 stopRecording`, false, String(e)));
                const off = await waitFor('recording off', seen('off'), 10_000);
                check(`${tag} stopRecording from p1: everyone sees the recording off (${Date.now() - t1} ms)`, off,
                    JSON.stringify(await ps[2].state().then(s => s.recorder)));
            }
        }

        // AV moderation (issue #14; moderation.md §1, §2): the moderator's enableAVModeration('audio')
        // goes to the AV moderation component (the project's test stand-in for Jitsi's plugin), which
        // tells every occupant; the focus force-mutes the others at the bridge and sends them a mute IQ
        // (not the moderator who turned it on). An approved participant's unmute is accepted and lifts
        // its force-mute; disabling is state only, the force-mute is lifted by the participant's own
        // unmute (Jicofo's rule).
        {
            const [ mod, p2, p3 ] = ps;
            const focusJid = `${room}@${dep.muc}/focus`;
            const supported = [];
            for (const p of ps) {
                supported.push(await p.page.evaluate(() => window.avModerationSupported()).catch(() => false));
            }
            check(`${tag} everyone's library finds the AV moderation component (isAVModerationSupported)`,
                supported.every(Boolean), JSON.stringify(supported));
            const changed = on => async () => {
                for (const p of ps) {
                    const a = (await p.state()).avModeration;
                    if (!a.some(x => x.name === 'AV_MODERATION_CHANGED' && x.mediaType === 'audio' && x.enabled === on)) {
                        return null;
                    }
                }

                return true;
            };
            const t0 = Date.now();
            await mod.page.evaluate(() => window.setAVModeration(true, 'audio'));
            const on = await waitFor('AV moderation on', changed(true), 10_000);
            check(`${tag} enableAVModeration('audio') from p1: everyone sees AV_MODERATION_CHANGED on (${Date.now() - t0} ms)`,
                on, JSON.stringify(await p2.state().then(s => s.avModeration)));
            const actor = (await p2.state()).avModeration.find(x => x.name === 'AV_MODERATION_CHANGED' && x.enabled);
            check(`${tag} the AV moderation actor is p1`, actor && actor.actor === ids.p1, JSON.stringify(actor));
            for (const p of [ p2, p3 ]) {
                const muted = await waitFor(`${p.nick} muted by the focus`, async () => {
                    const s = await p.state();
                    const iq = muteIqs(s, 'in', 'audio').find(x => x.from === focusJid && x.value === 'true');
                    const local = await p.page.evaluate(() => window.localMuted('audio'));

                    return iq && local && s.localMutes.some(m => m.type === 'audio' && m.muted) ? iq : null;
                }, 10_000);
                check(`${tag} ${p.nick} muted by the focus (mute IQ from ${room}/focus, local audio track muted, TRACK_MUTE_CHANGED)`,
                    muted, JSON.stringify(muteIqs(await p.state(), 'in', 'audio').map(x => x.xml)));
                const enforced = await waitFor(`${p.nick} force-muted`, () => audioForceMuted(dep.record, ids[p.nick]), 5_000);
                check(`${tag} the bridge has ${p.nick} (${ids[p.nick]}) force-muted for audio`, enforced,
                    JSON.stringify(forceMutes(dep.record, ids[p.nick])));
            }
            {
                const s = await mod.state();
                const local = await mod.page.evaluate(() => window.localMuted('audio'));
                check(`${tag} p1, the moderator who turned it on, is neither force-muted nor sent a mute IQ`,
                    !forceMutes(dep.record, ids.p1).some(f => f.audio) && muteIqs(s, 'in', 'audio').length === 0 && !local,
                    `force-mutes ${JSON.stringify(forceMutes(dep.record, ids.p1))}; mute IQs ${muteIqs(s, 'in', 'audio').length}; muted ${local}`);
            }

            // p3 asks, the moderator approves (avModerationApprove), p3 unmutes: the focus accepts its
            // unmute and lifts the force-mute; p2 stays force-muted.
            await mod.page.evaluate(id => window.avModerationApprove('audio', id), ids.p3);
            const approved = await waitFor('p3 approved', async () => (await p3.state()).avModeration
                .some(x => x.name === 'AV_MODERATION_APPROVED' && x.mediaType === 'audio'), 10_000);
            check(`${tag} p3 approved by p1 sees AV_MODERATION_APPROVED`, approved,
                JSON.stringify((await p3.state()).avModeration));
            const unmute = async (p, what) => {
                await p.page.evaluate(() => window.unmuteLocal('audio')).catch(e => check(`${tag} ${p.nick} unmute`, false, String(e)));
                const iq = await waitFor(`${p.nick} unmute answered`, async () => muteIqs(await p.state(), 'out', 'audio')
                    .find(x => x.value === 'false' && x.answer), 10_000);
                check(`${tag} ${p.nick}'s unmute (${what}): its mute IQ false to the focus is accepted`,
                    iq && iq.answer === 'result', JSON.stringify(muteIqs(await p.state(), 'out', 'audio').map(x => [ x.value, x.answer ])));
                const lifted = await waitFor(`${p.nick} force-mute lifted`, () => forceMutes(dep.record, ids[p.nick]).length > 0
                    && !audioForceMuted(dep.record, ids[p.nick]), 5_000);
                check(`${tag} the bridge lifts ${p.nick}'s audio force-mute (${what})`, lifted,
                    JSON.stringify(forceMutes(dep.record, ids[p.nick])));
            };
            if (approved) {
                await unmute(p3, 'approved');
            }
            check(`${tag} p2, not approved, is still force-muted at the bridge`, audioForceMuted(dep.record, ids.p2),
                JSON.stringify(forceMutes(dep.record, ids.p2)));

            // The moderator turns it off: everyone sees it; the bridge keeps p2's force-mute until p2 unmutes.
            const t1 = Date.now();
            await mod.page.evaluate(() => window.setAVModeration(false, 'audio'));
            const off = await waitFor('AV moderation off', changed(false), 10_000);
            check(`${tag} disableAVModeration('audio') from p1: everyone sees AV_MODERATION_CHANGED off (${Date.now() - t1} ms)`,
                off, JSON.stringify(await p2.state().then(s => s.avModeration)));
            await sleep(300);
            check(`${tag} disabling is state only: p2 stays force-muted until it unmutes`, audioForceMuted(dep.record, ids.p2),
                JSON.stringify(forceMutes(dep.record, ids.p2)));
            await unmute(p2, 'after disable');
        }

        // Jingle: session-initiate from the focus, session-accept acknowledged, forwarded to the bridge.
        for (const p of ps) {
            const s = await p.state();
            const j = jingleOf(s.stanzas);
            const si = j.find(x => x.dir === 'in' && x.action === 'session-initiate');
            check(`${tag} ${p.nick} received session-initiate from the focus`,
                si && si.from === `${room}@${dep.muc}/focus`, si ? `from ${si.from}` : 'none');
            const sa = j.find(x => x.dir === 'out' && x.action === 'session-accept');
            const saResult = sa && j.find(x => x.dir === 'in' && x.id === sa.id && (x.type === 'result' || x.type === 'error'));
            check(`${tag} ${p.nick} sent session-accept and the focus acknowledged it`,
                saResult && saResult.type === 'result',
                !sa ? 'no session-accept sent' : !saResult ? 'no answer to it' : `answer ${saResult.type}: ${saResult.xml}`);
            if (!sa) {
                continue;
            }
            const fps = fingerprintsOf(sa.xml);
            const ssrcs = ssrcsOf(sa.xml);
            const ok = await waitFor(`${p.nick} on the bridge`, () => {
                const eps = colibriEndpoints(dep.record, ids[p.nick]);

                return eps.some(e => fps.length > 0 && fps.every(f => e.includes(f)))
                    && ssrcs.length > 0 && ssrcs.every(x => eps.some(e => new RegExp(`\\b${x}\\b`).test(e)));
            }, 5_000);
            check(`${tag} ${p.nick}'s session-accept reached the bridge (endpoint ${ids[p.nick]}: `
                + `DTLS fingerprint and ${ssrcs.length} SSRCs in a conference-modify)`, ok,
                `fingerprints ${fps.join(',')}; ssrcs ${ssrcs.join(',')}; endpoint elements seen: `
                + `${colibriEndpoints(dep.record, ids[p.nick]).length}`);
        }

        // The browser's ICE candidates (transport-info) reach the bridge too.
        for (const p of ps) {
            const sent = jingleOf((await p.state()).stanzas)
                .filter(x => x.dir === 'out' && x.action === 'transport-info')
                .flatMap(x => candidatesOf(x.xml));
            const ok = sent.length > 0 && await waitFor(`${p.nick} candidates on the bridge`, () => {
                const onBridge = colibriEndpoints(dep.record, ids[p.nick]).flatMap(candidatesOf);

                return sent.every(c => onBridge.includes(c));
            }, 5_000);
            check(`${tag} ${p.nick}'s ICE candidates (transport-info) reached the bridge`, ok,
                `sent ${sent.join(' ') || 'none'}; bridge has ${colibriEndpoints(dep.record, ids[p.nick]).flatMap(candidatesOf).join(' ')}`);
        }

        // The moderator (p1) leaves: the others see USER_LEFT and drop its sources themselves (the
        // focus sends no source-remove for a participant who left the MUC, media.md §3.7); the bridge
        // expires its endpoint; the focus makes one of the two others moderator (focus.md §3.3).
        const leaver = ps[0];
        const stay = ps.slice(1);
        const L = leaver.nick;
        const leaverSsrcs = ownSsrcs(await leaver.state());
        await leaver.page.evaluate(() => window.leaveConference());
        for (const p of stay) {
            const T = await waitFor(`${p.nick} USER_LEFT`, async () => {
                const s = await p.state();

                return s.usersLeft.includes(ids[L]) ? s : null;
            }, 10_000);
            check(`${tag} ${p.nick} sees USER_LEFT for ${L}`, T, `usersLeft ${(await p.state()).usersLeft}`);
            const gone = await waitFor(`${p.nick} ${L} sources gone`, async () => {
                const remote = await p.page.evaluate(() => window.remoteSsrcs());

                return remote.length > 0 && leaverSsrcs.every(x => !remote.includes(x));
            }, 10_000);
            check(`${tag} ${p.nick}'s remote description no longer has ${L}'s ${leaverSsrcs.length} SSRCs`, gone,
                `remote ${await p.page.evaluate(() => window.remoteSsrcs())}; ${L} ${leaverSsrcs}`);
        }
        const expired = await waitFor(`${L} expired`, () => colibriEndpoints(dep.record, ids[L])
            .some(e => /\sexpire=["']true["']/.test(e.slice(0, e.indexOf('>') + 1))), 10_000);
        check(`${tag} the bridge is told to expire ${L}'s endpoint`, expired);
        let newRoles = {};
        const elected = await waitFor('new moderator', async () => {
            newRoles = {};
            for (const p of stay) {
                newRoles[p.nick] = (await p.state()).role;
            }

            return Object.values(newRoles).filter(r => r === 'moderator').length === 1;
        }, 10_000);
        await sleep(300);
        for (const p of stay) {
            newRoles[p.nick] = (await p.state()).role;
        }
        check(`${tag} after the moderator left, exactly one of ${stay.map(p => p.nick).join(', ')} is moderator`,
            elected && Object.values(newRoles).filter(r => r === 'moderator').length === 1, JSON.stringify(newRoles));

        // No media flows (the simulator has no ICE agent), so the library's ICE fails after ~15 s and
        // it asks for a restart with session-terminate restart=true; the focus must re-invite it.
        for (const p of stay) {
            const restarted = await waitFor(`${p.nick} restart`, async () => {
                const j = jingleOf((await p.state()).stanzas);
                const term = j.find(x => x.dir === 'out' && x.action === 'session-terminate'
                    && /restart=["']true["']/.test(x.xml));
                const si = term && j.find(x => x.dir === 'in' && x.action === 'session-initiate' && x.t >= term.t);
                const sa = si && j.find(x => x.dir === 'out' && x.action === 'session-accept' && x.t >= si.t);
                const res = sa && j.find(x => x.dir === 'in' && x.id === sa.id && x.type === 'result');

                return res ? { term, si } : null;
            }, 40_000);
            check(`${tag} ${p.nick} ICE-failure restart (session-terminate restart=true): re-invited, `
                + 'new session-accept acknowledged', restarted,
                `jingle: ${jingleOf((await p.state()).stanzas).filter(x => x.action).map(x => `${x.dir}:${x.action}`).join(' ')}`);
        }
        // After all that, the two each have the other's current sources and no stale ones: the
        // audio SSRC and a video SSRC of the other's latest session-accept (the library keeps only the
        // first simulcast layer and its RTX of a remote video), nothing of its earlier sessions, nothing of the leaver.
        for (const [ p, other ] of [ [ stay[0], stay[1] ], [ stay[1], stay[0] ] ]) {
            let detail = '';
            const ok = await waitFor(`${p.nick} converged`, async () => {
                const accepts = acceptsByMedia(await other.state());
                const cur = accepts[accepts.length - 1];
                const curAll = [ ...cur.audio, ...cur.video ];
                const stale = accepts.slice(0, -1).flatMap(a => [ ...a.audio, ...a.video ]).filter(x => !curAll.includes(x));
                const remote = await p.page.evaluate(() => window.remoteSsrcs());
                detail = `remote ${remote}; ${other.nick} now audio ${cur.audio} video ${cur.video}, before ${stale}`;

                return cur.audio.length > 0 && cur.audio.every(x => remote.includes(x))
                    && cur.video.some(x => remote.includes(x))
                    && !stale.some(x => remote.includes(x))
                    && !leaverSsrcs.some(x => remote.includes(x));
            }, 10_000);
            check(`${tag} ${p.nick} ends with ${other.nick}'s current audio and video SSRCs, no stale ones, none of ${L}'s`,
                ok, detail);
        }

        for (const p of stay) {
            const s = await p.state();
            check(`${tag} ${p.nick} no library errors or conference failures`,
                s.errors.length === 0 && !s.events.some(e => e.name === 'CONFERENCE_FAILED'),
                `${s.errors.join('; ')} ${s.events.filter(e => e.name === 'CONFERENCE_FAILED').map(e => e.data.error)}`);
        }
    } catch (e) {
        check(`${tag} round ran to the end`, false, e.stack || String(e));
    } finally {
        for (const p of ps) {
            await saveParticipant(roundDir, p);
        }
        for (const p of ps) {
            await p.page.evaluate(() => window.leaveConference && !window.T.left && window.leaveConference())
                .catch(() => {});
        }
        await sleep(300);
        await closeContext();
        cleanups.splice(cleanups.indexOf(closeContext), 1);
    }
    const failed = results.filter(r => !r.ok).length > failedBefore;
    if (failed) {
        log(`round ${tag} failed: stanzas both ways, events and console logs are in ${roundDir}`);
    }
}

async function main() {
    const timer = setTimeout(async () => {
        check('whole run within its time limit', false, `${TOTAL_TIMEOUT_MS / 1000}s`);
        await finish(1);
    }, TOTAL_TIMEOUT_MS);
    const started = Date.now();
    try {
        if (!fs.existsSync(chromiumPath)) {
            throw new Error(`${chromiumPath} is missing (apt-get install chromium)`);
        }
        const port = await startServer();
        const dep = await startDeployment();
        log(`page server http://*.localhost:${port}/ (127.0.0.1), XMPP ${dep.serviceUrl}, focus ${dep.focus}`);
        for (const sn of rounds) {
            await runRound(port, dep, sn);
        }
    } catch (e) {
        check('setup', false, e.stack || String(e));
    }
    clearTimeout(timer);
    log(`took ${((Date.now() - started) / 1000).toFixed(1)}s`);
    await finish(0);
}

let finishing = false;
async function finish() {
    if (finishing) {
        return;
    }
    finishing = true;
    // Keep the deployment's logs with the artifacts (they are in LOCAL_DIR already when it is there).
    await cleanup();
    const failed = results.filter(r => !r.ok);
    console.log('');
    console.log(failed.length === 0 ? 'browser-test: PASS' : `browser-test: FAIL (${failed.map(r => r.name).join('; ')})`);
    if (failed.length) {
        console.log(`browser-test: artifacts (stanzas, events, console, jicofo.log, jvb-sim.jsonl) in ${artifacts}`);
    }
    // (scripts/browser-test.sh runs one mode after another and sums them up in the last line.)
    console.log(`${process.env.RESULT_PREFIX || ''}${results.length - failed.length} passed, ${failed.length} failed`);
    process.exit(failed.length === 0 ? 0 : 1);
}

main();
