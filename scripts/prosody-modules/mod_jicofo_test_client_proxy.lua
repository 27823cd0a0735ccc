-- mod_jicofo_test_client_proxy.lua: a TEST TOOL of the jicofo project, not part of the focus.
--
-- Makes a Prosody component behave like the `client_proxy` component that Jitsi's installers
-- declare for `focus.<domain>` since 2021, so that jicofo's client-only mode can be tested
-- against a private Prosody (scripts/prosody.sh with PROSODY_LAYOUT=client_proxy). Written
-- from the behaviour described in shared/protocol/moderation.md section 6:
--
--   Component "focus.meet.test" "jicofo_test_client_proxy"
--       target_address = "focus@auth.meet.test"
--
-- * Presence from the target user (any resource) to the component's bare JID tells which
--   resources may receive requests: available adds the resource, unavailable removes it,
--   an error forgets all of them. Other stanzas from the target to the bare JID: bad-request.
-- * An IQ get/set from anyone else to the component (any resource) goes to one known
--   resource of the target, picked at random, with from = <component>/<sender's full JID>
--   and the same id; with no known resource the sender gets service-unavailable (cancel).
-- * An IQ result/error from the target to <component>/<x> goes to <x> (prepped; dropped when
--   invalid) with from = <component>. The target's own get/set IQs and messages through the
--   component get feature-not-implemented; so do other senders' messages. Other senders'
--   non-error presences get bad-request. Anything else is dropped.

local jid_split = require "util.jid".split;
local jid_bare = require "util.jid".bare;
local jid_prep = require "util.jid".prep;
local st = require "util.stanza";

local target = module:get_option_string("target_address");
if not target then
	error("jicofo_test_client_proxy: target_address is not set", 0);
end
local component = module.host;

-- The target's resources that announced themselves, in arrival order.
local resources = {};

local function index_of(resource)
	for i, r in ipairs(resources) do
		if r == resource then return i; end
	end
end

local function from_target_to_component(stanza)
	if stanza.name ~= "presence" then
		module:send(st.error_reply(stanza, "cancel", "bad-request"));
		return;
	end
	local _, _, resource = jid_split(stanza.attr.from);
	local kind = stanza.attr.type;
	if kind == "error" then
		resources = {};
		module:log("debug", "error presence from the target: no resource is known now");
	elseif kind == "unavailable" then
		local i = resource and index_of(resource);
		if i then
			table.remove(resources, i);
			module:log("debug", "target resource gone: %s", resource);
		end
	elseif kind == nil and resource and not index_of(resource) then
		table.insert(resources, resource);
		module:log("debug", "target resource available: %s", resource);
	end
end

local function from_target_to_someone(stanza, to_resource)
	local kind = stanza.attr.type;
	if stanza.name == "iq" and (kind == "result" or kind == "error") then
		local destination = jid_prep(to_resource);
		if not destination then
			module:log("debug", "answer to an invalid address dropped: %s", tostring(to_resource));
			return;
		end
		stanza.attr.from = component;
		stanza.attr.to = destination;
		module:send(stanza);
	elseif (stanza.name == "iq" or stanza.name == "message") and kind ~= "error" then
		module:send(st.error_reply(stanza, "cancel", "feature-not-implemented"));
	end
end

local function from_someone(stanza)
	local kind = stanza.attr.type;
	if stanza.name == "iq" then
		if kind ~= "get" and kind ~= "set" then return; end
		if #resources == 0 then
			module:send(st.error_reply(stanza, "cancel", "service-unavailable"));
			return;
		end
		local resource = resources[math.random(#resources)];
		stanza.attr.from = component .. "/" .. stanza.attr.from;
		stanza.attr.to = target .. "/" .. resource;
		module:send(stanza);
	elseif stanza.name == "message" then
		if kind ~= "error" then
			module:send(st.error_reply(stanza, "cancel", "feature-not-implemented"));
		end
	elseif stanza.name == "presence" then
		if kind ~= "error" then
			module:send(st.error_reply(stanza, "cancel", "bad-request"));
		end
	end
end

local function on_stanza(event)
	local stanza = event.stanza;
	if not stanza.attr.from then return true; end
	local _, _, to_resource = jid_split(stanza.attr.to);
	if jid_bare(stanza.attr.from) == target then
		if to_resource then
			from_target_to_someone(stanza, to_resource);
		else
			from_target_to_component(stanza);
		end
	else
		from_someone(stanza);
	end
	return true;
end

for _, name in ipairs({ "iq", "message", "presence" }) do
	for _, addressing in ipairs({ "host", "bare", "full" }) do
		module:hook(name .. "/" .. addressing, on_stanza, -1);
	end
end

module:log("info", "client_proxy test tool for %s on %s", target, component);
