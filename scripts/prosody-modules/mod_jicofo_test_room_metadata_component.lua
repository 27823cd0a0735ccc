-- mod_jicofo_test_room_metadata_component.lua: a TEST TOOL of the jicofo project, not part of
-- the focus.
--
-- Plays the `room_metadata` component of a Jitsi deployment for jicofo's tests, written from
-- shared/protocol/moderation.md section 4.1 (no code of Jitsi's plugin):
--
--   Component "metadata.meet.test" "jicofo_test_room_metadata_component"
--       muc_component = "conference.meet.test"
--
-- * A moderator occupant of room R sends to the component
--   <room_metadata xmlns="http://jitsi.org/jitmeet" room="R">{"key":K,"data":D}</room_metadata>;
--   keys the plugin blocks (moderators, participants, …) are ignored, as is anyone else.
-- * After every change every occupant of R (the focus included) gets, from the component's JID,
--   <json-message xmlns="http://jitsi.org/jitmeet" room="R">{"type":"room_metadata",
--   "metadata":{…}}</json-message>. (The real plugin also sends it to each joiner; not needed by
--   the tests.)

local st = require "util.stanza";
local json = require "util.json";

local muc_host = module:get_option_string("muc_component");
if not muc_host then
	error("jicofo_test_room_metadata_component: muc_component is not set", 0);
end

local blocked = {
	moderators = true, participants = true, participantsSoftLimit = true, visitorsEnabled = true,
	transcription = true, asyncTranscription = true, services = true,
};

-- room JID -> metadata table
local metadata = {};

module:hook("message/host", function (event)
	local stanza = event.stanza;
	local request = stanza:get_child("room_metadata", "http://jitsi.org/jitmeet");
	if not request then return; end
	local host = prosody.hosts[muc_host];
	local room = host and host.modules.muc and host.modules.muc.get_room_from_jid(request.attr.room or "");
	if not room then return true; end
	local occupant = room:get_occupant_by_real_jid(stanza.attr.from);
	if not occupant or occupant.role ~= "moderator" then return true; end
	local ok, change = pcall(json.decode, request:get_text() or "");
	if not ok or type(change) ~= "table" or type(change.key) ~= "string" or blocked[change.key] then return true; end
	local md = metadata[room.jid] or { lobbyEnabled = false };
	md[change.key] = change.data;
	metadata[room.jid] = md;
	local text = json.encode({ type = "room_metadata", metadata = md });
	for _, o in room:each_occupant() do
		for real_jid in o:each_session() do
			module:send(st.message({ from = module.host, to = real_jid })
				:tag("json-message", { xmlns = "http://jitsi.org/jitmeet", room = room.jid }):text(text):up());
		end
	end
	return true;
end, 10);
