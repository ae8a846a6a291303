// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice),
// for tests and benchmarks that start servers. Another process may take it
// before the caller binds it; callers that must be sure retry.
#pragma once

namespace bgagent {

int free_port();

}  // namespace bgagent
