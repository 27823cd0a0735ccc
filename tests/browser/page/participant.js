/* A lib-jitsi-meet participant driven by the test runner (tests/browser/run.mjs).
 *
 * Query parameters: serviceUrl, domain, muc, focus, room, nick, sourceNames (0/1).
 * Everything the runner checks is in window.T; window.leaveConference() leaves.
 * Every stanza both ways is kept in T.stanzas (Strophe's rawInput/rawOutput).
 */
(function () {
    'use strict';
    const q = new URLSearchParams(location.search);
    const cfg = {
        serviceUrl: q.get('serviceUrl'),
        domain: q.get('domain'),
        muc: q.get('muc'),
        focus: q.get('focus'),
        room: q.get('room'),
        nick: q.get('nick'),
        sourceNames: q.get('sourceNames') === '1'
    };
    const T = window.T = {
        cfg,
        events: [],          // {t, name, data}
        errors: [],
        connected: false,
        joined: false,
        left: false,
        myId: null,
        role: null,
        localTracks: [],     // {type, sourceName}
        remoteTracks: [],    // {participant, type, sourceName, ssrc}
        removedTracks: [],   // {participant, type}
        usersJoined: [],
        usersLeft: [],
        recorder: [],        // {t, id, status, mode, error} from RECORDER_STATE_CHANGED
        avModeration: [],    // {t, name, enabled, mediaType, actor} from AV_MODERATION_* events
        localMutes: [],      // {t, type, muted} from TRACK_MUTE_CHANGED of the local tracks
        stanzas: [],         // {t, dir: 'in'|'out', xml}
        done: false
    };
    const status = () => {
        const el = document.getElementById('status');
        if (el) {
            el.textContent = JSON.stringify({ joined: T.joined, role: T.role, remote: T.remoteTracks.length }, null, 1);
        }
    };
    const ev = (name, data) => {
        T.events.push({ t: Date.now(), name, data });
        console.log(`EVENT ${name} ${JSON.stringify(data === undefined ? {} : data)}`);
        status();
    };
    const fail = (where, e) => {
        const msg = `${where}: ${e && (e.stack || e.message || e.name) || e}`;
        T.errors.push(msg);
        console.log(`ERROR ${msg}`);
    };
    window.addEventListener('error', e => fail('window.onerror', e.error || e.message));
    window.addEventListener('unhandledrejection', e => fail('unhandledrejection', e.reason));

    const JitsiMeetJS = window.JitsiMeetJS;
    if (!JitsiMeetJS) {
        fail('load', 'JitsiMeetJS missing');

        return;
    }
    const E = JitsiMeetJS.events;

    JitsiMeetJS.init({
        // The 2021 library takes the source-name feature flag in init(), not in the conference options.
        sourceNameSignaling: cfg.sourceNames,
        disableAudioLevels: true,
        enableAnalyticsLogging: false
    });
    JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.INFO);
    ev('LIB_VERSION', { version: JitsiMeetJS.version, sourceNames: cfg.sourceNames });

    const connection = new JitsiMeetJS.JitsiConnection(null, null, {
        hosts: { domain: cfg.domain, muc: cfg.muc, focus: cfg.focus },
        serviceUrl: cfg.serviceUrl,
        clientNode: 'https://jitsi.org/jitsi-meet'
    });

    // Record every stanza both ways (chaining the library's own hooks).
    const strophe = connection.xmpp && connection.xmpp.connection && connection.xmpp.connection._stropheConn;
    if (strophe) {
        const origIn = strophe.rawInput.bind(strophe);
        const origOut = strophe.rawOutput.bind(strophe);
        strophe.rawInput = data => {
            T.stanzas.push({ t: Date.now(), dir: 'in', xml: String(data) });
            origIn(data);
        };
        strophe.rawOutput = data => {
            T.stanzas.push({ t: Date.now(), dir: 'out', xml: String(data) });
            origOut(data);
        };
    } else {
        fail('hook', 'no Strophe connection to record stanzas');
    }

    let conference = null;
    let localTracks = [];

    const trackInfo = track => ({
        participant: track.getParticipantId ? track.getParticipantId() : null,
        type: track.getType(),
        sourceName: track.getSourceName ? track.getSourceName() : undefined,
        ssrc: track.getSSRC ? track.getSSRC() : undefined
    });

    function joinConference() {
        conference = connection.initJitsiConference(cfg.room, {
            p2p: { enabled: false },
            openBridgeChannel: 'websocket',
            disableSimulcast: false,
            enableLayerSuspension: true
        });
        window.conference = conference;
        conference.on(E.conference.CONFERENCE_JOINED, () => {
            T.joined = true;
            T.myId = conference.myUserId();
            T.role = conference.isModerator() ? 'moderator' : 'participant';
            ev('CONFERENCE_JOINED', { id: T.myId, role: T.role });
        });
        conference.on(E.conference.CONFERENCE_FAILED, e => ev('CONFERENCE_FAILED', { error: String(e) }));
        conference.on(E.conference.CONFERENCE_ERROR, e => ev('CONFERENCE_ERROR', { error: String(e) }));
        conference.on(E.conference.CONFERENCE_LEFT, () => ev('CONFERENCE_LEFT'));
        conference.on(E.conference.USER_ROLE_CHANGED, (id, role) => {
            if (id === conference.myUserId()) {
                T.role = role;
            }
            ev('USER_ROLE_CHANGED', { id, role, local: id === conference.myUserId() });
        });
        conference.on(E.conference.USER_JOINED, (id, user) => {
            T.usersJoined.push(id);
            ev('USER_JOINED', { id, jid: user && user.getJid && user.getJid() });
        });
        conference.on(E.conference.USER_LEFT, id => {
            T.usersLeft.push(id);
            ev('USER_LEFT', { id });
        });
        conference.on(E.conference.TRACK_ADDED, track => {
            if (track.isLocal()) {
                return;
            }
            const info = trackInfo(track);
            T.remoteTracks.push(info);
            ev('TRACK_ADDED', info);
        });
        conference.on(E.conference.TRACK_REMOVED, track => {
            if (track.isLocal()) {
                return;
            }
            const info = trackInfo(track);
            T.removedTracks.push(info);
            ev('TRACK_REMOVED', info);
        });
        conference.on(E.conference.RECORDER_STATE_CHANGED, session => {
            const info = {
                t: Date.now(),
                id: session.getID(),
                status: session.getStatus(),
                mode: session.getMode(),
                error: session.getError ? session.getError() : undefined
            };
            T.recorder.push(info);
            ev('RECORDER_STATE_CHANGED', info);
        });
        // AV moderation (the component's messages, as the library reports them).
        conference.on(E.conference.AV_MODERATION_CHANGED, ({ enabled, mediaType, actor }) => {
            const info = { t: Date.now(), name: 'AV_MODERATION_CHANGED', enabled, mediaType,
                actor: actor && actor.getId ? actor.getId() : null };
            T.avModeration.push(info);
            ev('AV_MODERATION_CHANGED', info);
        });
        for (const name of [ 'AV_MODERATION_APPROVED', 'AV_MODERATION_REJECTED' ]) {
            conference.on(E.conference[name], ({ mediaType }) => {
                const info = { t: Date.now(), name, mediaType };
                T.avModeration.push(info);
                ev(name, info);
            });
        }
        conference.on(E.conference.TRACK_MUTE_CHANGED, track => {
            if (!track.isLocal()) {
                return;
            }
            const info = { t: Date.now(), type: track.getType(), muted: track.isMuted() };
            T.localMutes.push(info);
            ev('LOCAL_TRACK_MUTE_CHANGED', info);
        });
        conference.on(E.conference._MEDIA_SESSION_STARTED, session => ev('MEDIA_SESSION_STARTED', { p2p: session.isP2P }));
        conference.on(E.conference.P2P_STATUS, (_, p2p) => ev('P2P_STATUS', { p2p }));
        conference.on(E.conference.CONNECTION_INTERRUPTED, () => ev('CONNECTION_INTERRUPTED'));
        conference.on(E.conference.CONNECTION_ESTABLISHED, () => ev('ICE_CONNECTION_ESTABLISHED'));
        for (const t of localTracks) {
            conference.addTrack(t).catch(e => fail('addTrack', e));
        }
        conference.setDisplayName(cfg.nick);
        conference.join();
    }

    // lib-jitsi-meet's recording API, as jitsi-meet's Record button calls it.
    window.startRecording = async () => {
        const session = await conference.startRecording({
            mode: JitsiMeetJS.constants.recording.mode.FILE,
            appData: JSON.stringify({ file_recording_metadata: { share: true } })
        });

        return session.getID();
    };
    window.stopRecording = id => conference.stopRecording(id).then(() => true);

    // lib-jitsi-meet's AV moderation API, as jitsi-meet's "moderate audio" menu calls it.
    window.avModerationSupported = () => conference.isAVModerationSupported();
    window.setAVModeration = (on, mediaType) => on
        ? conference.enableAVModeration(mediaType) : conference.disableAVModeration(mediaType);
    window.avModerationApprove = (mediaType, id) => conference.avModerationApprove(mediaType, id);
    const localTrack = type => localTracks.find(t => t.getType() === type);
    window.localMuted = type => localTrack(type).isMuted();
    // The user's unmute button (the library tells the focus when the focus had muted it).
    window.unmuteLocal = type => localTrack(type).unmute().then(() => true);

    // The SSRCs in the remote description of the bridge session (what the browser was told of).
    window.remoteSsrcs = () => {
        const session = conference && conference.jvbJingleSession;
        const pc = session && session.peerconnection && session.peerconnection.peerconnection;
        const sdp = pc && pc.remoteDescription ? pc.remoteDescription.sdp : '';
        const set = new Set();
        for (const m of sdp.matchAll(/^a=ssrc:(\d+) /gm)) {
            set.add(m[1]);
        }

        return [ ...set ];
    };

    window.leaveConference = async () => {
        try {
            if (conference) {
                await conference.leave();
            }
        } catch (e) {
            fail('leave', e);
        }
        for (const t of localTracks) {
            try {
                await t.dispose();
            } catch (e) { /* already disposed */ }
        }
        try {
            connection.disconnect();
        } catch (e) {
            fail('disconnect', e);
        }
        T.left = true;
        ev('LEFT');
    };

    connection.addEventListener(E.connection.CONNECTION_ESTABLISHED, () => {
        T.connected = true;
        ev('CONNECTION_ESTABLISHED');
        JitsiMeetJS.createLocalTracks({ devices: [ 'audio', 'video' ] })
            .then(tracks => {
                localTracks = tracks;
                T.localTracks = tracks.map(t => ({ type: t.getType(), sourceName: t.getSourceName && t.getSourceName() }));
                ev('LOCAL_TRACKS', T.localTracks);
            }, e => fail('createLocalTracks', e))
            .then(() => joinConference())
            .catch(e => fail('join', e));
    });
    connection.addEventListener(E.connection.CONNECTION_FAILED, (e, msg) => ev('CONNECTION_FAILED', { error: String(e), msg }));
    connection.addEventListener(E.connection.CONNECTION_DISCONNECTED, () => ev('CONNECTION_DISCONNECTED'));
    connection.connect();
})();
