// bgagent-testbin: the real bgagent CLI plus test-only provider doubles.
// Built only with the tests; never installed.
#include "app/cli.hpp"
#include "providers/provider_registry.hpp"
#include "tests/doubles/scripted_provider.hpp"

int main(int argc, char** argv) {
  auto providers = bgagent::provider_registry::with_builtins();
  providers.add("scripted", bgagent::testing::make_scripted_provider);
  return bgagent::cli_main(argc, argv, providers);
}
