#include "bench/task_generator.hpp"

#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace bgagent::bench {
namespace {

constexpr std::array<const char*, 8> subjects = {
    "The Riverside council", "Acme Robotics", "Dr. Maria Chen",
    "The Northwind Bank",    "Our support team", "The Berlin office",
    "Professor Alan Okafor", "The city of Lisbon"};
constexpr std::array<const char*, 8> actions = {
    "announced a new transit plan on Monday",
    "reported quarterly revenue of 4.2 million dollars",
    "opened a research lab near the harbour",
    "delayed the product launch until March",
    "hired forty engineers for the Austin campus",
    "cut prices on every subscription tier",
    "published a study on urban heat islands",
    "signed a partnership with Globex Corporation"};
constexpr std::array<const char*, 6> verdicts = {
    "Customers said the service was excellent and fast.",
    "Reviewers called the result disappointing and slow.",
    "Most people found the change helpful, though a few were confused.",
    "The staff were friendly, and the whole process felt easy.",
    "Critics described the rollout as a terrible mess.",
    "Analysts expect steady growth over the next year."};
constexpr std::array<const char*, 3> types = {"summarize", "analyze_sentiment",
                                              "extract_entities"};

std::string input_for(std::size_t n) {
  std::string text;
  for (std::size_t k = 0; k < 3; ++k) {
    std::size_t mix = n * 2654435761u + k * 40503u;  // cheap, deterministic spread
    text += subjects[mix % subjects.size()];
    text += ' ';
    text += actions[(mix / 7) % actions.size()];
    text += ". ";
    text += verdicts[(mix / 13) % verdicts.size()];
    text += ' ';
  }
  text += "Reference number " + std::to_string(n) + '.';
  return text;
}

}  // namespace

void write_generated_tasks(std::ostream& out, std::size_t count,
                           const std::string& id_prefix) {
  for (std::size_t n = 1; n <= count; ++n) {
    nlohmann::ordered_json task;
    task["id"] = id_prefix + "-" + std::to_string(n);
    task["type"] = types[n % types.size()];
    task["input"] = input_for(n);
    out << task.dump() << '\n';
  }
}

void write_generated_tasks_file(const std::string& path, std::size_t count,
                                const std::string& id_prefix) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw std::runtime_error(path + ": cannot open for writing");
  write_generated_tasks(out, count, id_prefix);
  out.flush();
  if (!out) throw std::runtime_error(path + ": write failed");
}

std::vector<task> generated_tasks(std::size_t count,
                                  const std::string& id_prefix) {
  std::vector<task> out;
  out.reserve(count);
  std::stringstream lines;
  write_generated_tasks(lines, count, id_prefix);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    task t;
    t.id = j["id"];
    t.type = j["type"];
    t.input = j["input"];
    t.idempotency_key = t.id;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace bgagent::bench
