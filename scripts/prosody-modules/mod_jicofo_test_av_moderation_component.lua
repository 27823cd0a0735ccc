-- mod_jicofo_test_av_moderation_component.lua: a TEST TOOL of the jicofo project, not part of
-- the focus.
--
-- Plays the `av_moderation` component of a Jitsi deployment for jicofo's tests, written from
-- shared/protocol/moderation.md section 1 (no code of Jitsi's plugin):
--
--   Component "avmoderation.meet.test" "jicofo_test_av_moderation_component"
--       muc_component = "conference.meet.test"
--
-- * A message to the component with <av_moderation/> (jabber:client) from an occupant whose role
--   is moderator (its room is found by its real JID among the MUC's rooms; anyone else is
--   ignored, silently):
--     enable="true|false" mediaType=T      moderation of T on/off;
--     mediaType=T jidToWhitelist=OCCUPANT  OCCUPANT may unmute T;
--     mediaType=T jidToBlacklist=OCCUPANT  no longer.
-- * On enable/disable every occupant (the focus included) gets, from the component's JID,
--   <json-message xmlns="http://jitsi.org/jitmeet">{"type":"av_moderation","enabled":…,"room":…,
--   "actor":…,"mediaType":…}</json-message>; on enable the moderators (not the focus) are
--   whitelisted, as the newest plugin does.
-- * After enable and every whitelist change, every moderator occupant (the focus included) gets
--   {"type":"av_moderation","room":…,"whitelists":{T:[…]},"mediaType":T} (empty lists omitted,
--   "removed":true after a blacklist); a whitelisted participant gets {…,"approved":true}.

local st = require "util.stanza";
local json = require "util.json";

local muc_host = module:get_option_string("muc_component");
if not muc_host then
	error("jicofo_test_av_moderation_component: muc_component is not set", 0);
end

-- room JID -> { enabled = { T = bool }, whitelist = { T = { occupant JID, … } } }
local rooms = {};

local function state_of(room_jid)
	local s = rooms[room_jid];
	if not s then
		s = { enabled = {}, whitelist = {} };
		rooms[room_jid] = s;
	end
	return s;
end

local function find_room(real_jid)
	local host = prosody.hosts[muc_host];
	local muc = host and host.modules.muc;
	if not muc then return nil; end
	for room in muc.all_rooms() do
		local occupant = room:get_occupant_by_real_jid(real_jid);
		if occupant then return room, occupant; end
	end
end

local function send_json(to, data)
	module:send(st.message({ from = module.host, to = to })
		:tag("json-message", { xmlns = "http://jitsi.org/jitmeet" }):text(json.encode(data)):up());
end

-- Call f(real JID) for each session of each occupant for which keep(occupant) is true.
local function each_session(room, keep, f)
	for _, occupant in room:each_occupant() do
		if keep(occupant) then
			for real_jid in occupant:each_session() do f(real_jid); end
		end
	end
end

local function is_focus(occupant)
	return occupant.nick:match("/focus$") ~= nil;
end

local function send_whitelist(room, media, removed)
	local list = state_of(room.jid).whitelist[media] or {};
	local data = { type = "av_moderation", room = room.jid, mediaType = media };
	if #list > 0 then data.whitelists = { [media] = list }; end
	if removed then data.removed = true; end
	each_session(room, function (o) return o.role == "moderator"; end, function (to) send_json(to, data); end);
end

local function index_of(list, value)
	for i, v in ipairs(list) do
		if v == value then return i; end
	end
end

module:hook("message/host", function (event)
	local stanza = event.stanza;
	local request = stanza:get_child("av_moderation");
	if not request then return; end
	local room, occupant = find_room(stanza.attr.from);
	if not room or occupant.role ~= "moderator" then return true; end
	local media = request.attr.mediaType;
	if media ~= "audio" and media ~= "video" and media ~= "desktop" then return true; end
	local s = state_of(room.jid);
	if request.attr.enable ~= nil then
		local on = request.attr.enable == "true";
		s.enabled[media] = on;
		local data = { type = "av_moderation", enabled = on, room = room.jid, actor = occupant.nick, mediaType = media };
		each_session(room, function () return true; end, function (to) send_json(to, data); end);
		if on then
			local list = {};
			for _, o in room:each_occupant() do
				if o.role == "moderator" and not is_focus(o) then table.insert(list, o.nick); end
			end
			s.whitelist[media] = list;
			send_whitelist(room, media, false);
		end
	elseif request.attr.jidToWhitelist then
		local who = request.attr.jidToWhitelist;
		local list = s.whitelist[media] or {};
		if not index_of(list, who) then table.insert(list, who); end
		s.whitelist[media] = list;
		send_whitelist(room, media, false);
		local target = room:get_occupant_by_nick(who);
		if target then
			for real_jid in target:each_session() do
				send_json(real_jid, { type = "av_moderation", room = room.jid, mediaType = media, approved = true });
			end
		end
	elseif request.attr.jidToBlacklist then
		local list = s.whitelist[media] or {};
		local i = index_of(list, request.attr.jidToBlacklist);
		if i then table.remove(list, i); end
		s.whitelist[media] = list;
		send_whitelist(room, media, true);
	end
	return true;
end, 10);
