// What a bgagent process says on the wire, as one string: its version and a
// fingerprint of every registered message type (its name and the text of a
// default value, which lists each field, and its serialized bytes, which
// show each field's width). CAF's typed handshake compares type names only, so two builds whose message layouts differ would misread
// each other's messages; the gatekeeper refuses a node whose wire string is
// not its own.
//
// Contract: "VERSION/16 hex digits". Equal for two processes of one build.
// Different when BGAGENT_VERSION differs or a registered type is added or
// removed, or gains, loses or retypes a field (two fields of one type and
// default that swap places go unseen). Call it after add_message_types().
//
// well_formed_wire(): the shape a fingerprint has, for a peer's to be shown.
#pragma once

#include <string>

#include <caf/fwd.hpp>

namespace bgagent {

std::string wire_fingerprint(const caf::actor_system_config& cfg);

bool well_formed_wire(const std::string& wire);

} // namespace bgagent
