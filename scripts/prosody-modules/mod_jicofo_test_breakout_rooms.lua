-- mod_jicofo_test_breakout_rooms.lua: a TEST TOOL of the jicofo project, not part of the focus.
--
-- Plays Jitsi's breakout rooms plugin for jicofo's tests, written from
-- shared/protocol/moderation.md section 3 (no code of Jitsi's plugin). Loaded on the breakout
-- MUC component:
--
--   Component "breakout.meet.test" "muc"
--       modules_enabled = { "jicofo_test_breakout_rooms" }
--       breakout_rooms_main_muc = "conference.meet.test"
--
-- * A moderator occupant of a main room (found by its real JID) sends to the component
--   <breakout_rooms type="features/breakout-rooms/add" subject="…"/>: a room <uuid>@<component>
--   is registered for that main room (no MUC yet), and every occupant of the main room but the
--   focus gets {"type":"breakout_rooms","event":"features/breakout-rooms/update",
--   "roomCounter":N,"rooms":{…}} from the component's JID.
--   <breakout_rooms type="features/breakout-rooms/move-to-room" participantJid="<real JID>"
--   roomJid="…"/> sends {"type":"breakout_rooms","event":"features/breakout-rooms/move-to-room",
--   "roomJid":…} to that participant.
-- * A breakout room not registered cannot be created (not-allowed).
-- * The room configuration form of a registered room carries muc#roominfo_isbreakout = true and
--   muc#roominfo_breakout_main_room = the main room, which is how the focus learns it.

local st = require "util.stanza";
local json = require "util.json";
local uuid = require "util.uuid";

local main_host = module:get_option_string("breakout_rooms_main_muc");
if not main_host then
	error("jicofo_test_breakout_rooms: breakout_rooms_main_muc is not set", 0);
end

local registered = {}; -- breakout room JID -> { main = main room JID, name = subject }
local counter = 0;

local function send_json(to, data)
	module:send(st.message({ from = module.host, to = to })
		:tag("json-message", { xmlns = "http://jitsi.org/jitmeet" }):text(json.encode(data)):up());
end

local function find_room(real_jid)
	local host = prosody.hosts[main_host];
	local muc = host and host.modules.muc;
	if not muc then return nil; end
	for room in muc.all_rooms() do
		local occupant = room:get_occupant_by_real_jid(real_jid);
		if occupant then return room, occupant; end
	end
end

module:hook("message/host", function (event)
	local stanza = event.stanza;
	local request = stanza:get_child("breakout_rooms");
	if not request then return; end
	local main, occupant = find_room(stanza.attr.from);
	if not main or occupant.role ~= "moderator" then return true; end
	if request.attr.type == "features/breakout-rooms/add" then
		counter = counter + 1;
		local id = uuid.generate();
		local room_jid = id .. "@" .. module.host;
		registered[room_jid] = { main = main.jid, name = request.attr.subject or ("Room " .. counter) };
		local list = {};
		for jid, r in pairs(registered) do
			if r.main == main.jid then list[jid] = { id = jid:match("^[^@]+"), jid = jid, name = r.name }; end
		end
		local data = { type = "breakout_rooms", event = "features/breakout-rooms/update", roomCounter = counter, rooms = list };
		for _, o in main:each_occupant() do
			for real_jid in o:each_session() do
				if not real_jid:match("^focus@") then send_json(real_jid, data); end
			end
		end
	elseif request.attr.type == "features/breakout-rooms/move-to-room" and request.attr.participantJid then
		send_json(request.attr.participantJid,
			{ type = "breakout_rooms", event = "features/breakout-rooms/move-to-room", roomJid = request.attr.roomJid });
	end
	return true;
end, 10);

module:hook("muc-room-pre-create", function (event)
	if not registered[event.room.jid] then
		event.origin.send(st.error_reply(event.stanza, "cancel", "not-allowed", "not a registered breakout room"));
		return true;
	end
end, 100);

module:hook("muc-config-form", function (event)
	local r = registered[event.room.jid];
	if not r then return; end
	table.insert(event.form, { name = "muc#roominfo_isbreakout", type = "hidden", value = "true" });
	table.insert(event.form, { name = "muc#roominfo_breakout_main_room", type = "hidden", value = r.main });
end);
