// The command line: `bgagent run|submit|status|results|requeue|worker|admin|certs`.
//
// Contract: returns the process exit code (DESIGN.md section 8). Bad usage
// prints one line starting with "bgagent: " on stderr and returns 2. Flags
// override the environment, which overrides `.env`, which overrides
// defaults. `providers` lets a test binary add provider doubles.
#pragma once

namespace bgagent {

class provider_registry;

int cli_main(int argc, char** argv, const provider_registry& providers);

} // namespace bgagent
