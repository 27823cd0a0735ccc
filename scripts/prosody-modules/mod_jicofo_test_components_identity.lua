-- mod_jicofo_test_components_identity.lua: a TEST TOOL of the jicofo project, not part of the focus.
--
-- Loaded on the main VirtualHost, it advertises the Jitsi components the focus discovers with a
-- disco#info to the domain (shared/protocol/moderation.md section 0), the way Jitsi's own
-- Prosody plugins do on a real deployment:
--
--   VirtualHost "meet.test"
--       modules_enabled = { "jicofo_test_components_identity" }
--       jicofo_test_component_identities = {
--           av_moderation = "avmoderation.meet.test";
--           breakout_rooms = "breakout.meet.test";
--           room_metadata = "metadata.meet.test";
--       }
--
-- Each entry becomes <identity category="component" type="<key>" name="<address>"/>.

local identities = module:get_option("jicofo_test_component_identities", {});
for kind, address in pairs(identities) do
	module:add_identity("component", kind, address);
end
