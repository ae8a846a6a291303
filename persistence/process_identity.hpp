// Which process owns a piece of durable state (a submission still open in
// persistence/store_set): its pid and its start time, so a pid the kernel
// handed to another process since is not taken for the owner.
//
// Contract (Linux /proc):
// - process_start_time(pid) is the boot's id and the process's start time
//   in clock ticks since boot, as text; "" when no such process exists.
// - Limit: a process in another pid namespace (another container sharing
//   the files) is not seen, so it counts as gone.
// - process_alive(pid, start) is true only while that very process runs
//   (a zombie counts as gone).
#pragma once

#include <cstdint>
#include <string>

namespace bgagent {

std::string process_start_time(int64_t pid);
bool process_alive(int64_t pid, const std::string& start);

} // namespace bgagent
