// bgagent-generate-tasks COUNT [FILE] [ID_PREFIX]
// Writes COUNT deterministic synthetic tasks as JSON Lines (stdout without FILE).
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "bench/task_generator.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::cerr << "usage: bgagent-generate-tasks COUNT [FILE] [ID_PREFIX]\n";
    return 2;
  }
  char* end = nullptr;
  unsigned long long count = std::strtoull(argv[1], &end, 10);
  if (*argv[1] == '\0' || *end != '\0' || count == 0) {
    std::cerr << "bgagent-generate-tasks: COUNT must be a positive integer, got '"
              << argv[1] << "'\n";
    return 2;
  }
  std::string prefix = argc == 4 ? argv[3] : "gen";
  try {
    if (argc >= 3 && std::string(argv[2]) != "-")
      bgagent::bench::write_generated_tasks_file(argv[2], count, prefix);
    else
      bgagent::bench::write_generated_tasks(std::cout, count, prefix);
  } catch (const std::exception& e) {
    std::cerr << "bgagent-generate-tasks: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
