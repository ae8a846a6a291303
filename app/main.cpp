// bgagent: the background agent's executable. Everything lives in the
// engine library; main only picks the built-in providers.
#include "app/cli.hpp"
#include "providers/provider_registry.hpp"

int main(int argc, char** argv) {
  auto providers = bgagent::provider_registry::with_builtins();
  return bgagent::cli_main(argc, argv, providers);
}
