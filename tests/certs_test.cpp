// `bgagent certs init`, run like a user: the files and their modes, keys
// that match certificates the CA signed (checked with OpenSSL's own
// verifier), a cluster that grows, refusals that change nothing, and a head
// and a worker node that talk mutual TLS with nothing but these files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tests/support/cluster.hpp"
#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

const std::string certs_secret = "certs-test-secret";

struct x509_deleter {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using cert_ptr = std::unique_ptr<X509, x509_deleter>;
using key_ptr = std::unique_ptr<EVP_PKEY, x509_deleter>;

cert_ptr load_cert(const std::string& path) {
  auto* f = fopen(path.c_str(), "r");
  REQUIRE(f);
  cert_ptr x{PEM_read_X509(f, nullptr, nullptr, nullptr)};
  fclose(f);
  REQUIRE(x);
  return x;
}

key_ptr load_key(const std::string& path) {
  auto* f = fopen(path.c_str(), "r");
  REQUIRE(f);
  key_ptr k{PEM_read_PrivateKey(f, nullptr, nullptr, nullptr)};
  fclose(f);
  REQUIRE(k);
  return k;
}

int mode_of(const std::string& path) {
  struct stat sb {};
  REQUIRE(stat(path.c_str(), &sb) == 0);
  return sb.st_mode & 07777;
}

// X509_verify_cert of `cert` against the one trusted `ca`, for TLS clients
// and servers alike (both ends of a cluster link present certificates).
// Returns X509_V_OK or the verifier's error.
int verify(const std::string& cert, const std::string& ca, int purpose) {
  auto leaf = load_cert(cert);
  auto root = load_cert(ca);
  std::unique_ptr<X509_STORE, x509_deleter> store{X509_STORE_new()};
  REQUIRE(X509_STORE_add_cert(store.get(), root.get()) == 1);
  std::unique_ptr<X509_STORE_CTX, x509_deleter> ctx{X509_STORE_CTX_new()};
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) ==
          1);
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose) == 1);
  auto ok = X509_verify_cert(ctx.get());
  auto err = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

std::string subject_cn(X509* x) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
                            sizeof(buf));
  return buf;
}

std::string serial_hex(X509* x) {
  std::unique_ptr<BIGNUM, x509_deleter> bn{
    ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)};
  char* hex = BN_bn2hex(bn.get());
  std::string s = hex;
  OPENSSL_free(hex);
  return s;
}

int serial_bits(X509* x) {
  std::unique_ptr<BIGNUM, x509_deleter> bn{
    ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)};
  return BN_num_bits(bn.get());
}

// Whole days and seconds from notBefore to notAfter.
std::pair<int, int> validity(X509* x) {
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                         X509_get0_notAfter(x)) == 1);
  return {days, secs};
}

bool file_exists(const std::string& path) {
  struct stat sb {};
  return stat(path.c_str(), &sb) == 0;
}

} // namespace

TEST_CASE("certs init makes a CA and a certificate per node with private "
          "keys only the owner can read",
          "[certs]") {
  temp_dir dir;
  // A relative DIR, two levels of which do not exist yet.
  auto r = run_bgagent({"certs", "init", "cluster/pki", "--nodes",
                        "head,node-a"},
                       dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  auto pki = dir.path("cluster/pki");
  CHECK(mode_of(pki) == 0700);
  CHECK(mode_of(pki + "/ca.key") == 0600);
  CHECK(mode_of(pki + "/ca.pem") == 0644);
  for (std::string n : {"head", "node-a"}) {
    CHECK(mode_of(pki + "/" + n + ".key") == 0600);
    CHECK(mode_of(pki + "/" + n + ".pem") == 0644);
    // What was written, and the three variables the node needs.
    CHECK(r.out.find("wrote cluster/pki/" + n + ".key") != std::string::npos);
    CHECK(r.out.find("BG_AGENT_TLS_CERT=" + pki + "/" + n + ".pem\n") !=
          std::string::npos);
    CHECK(r.out.find("BG_AGENT_TLS_KEY=" + pki + "/" + n + ".key\n") !=
          std::string::npos);
  }
  CHECK(r.out.find("wrote cluster/pki/ca.key") != std::string::npos);
  CHECK(r.out.find("BG_AGENT_TLS_CA=" + pki + "/ca.pem\n") !=
        std::string::npos);
  // Nothing else in the directory.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(pki)) {
    (void)e;
    ++files;
  }
  CHECK(files == 6);
}

TEST_CASE("certs init: the keys match their certificates, the CA is a CA and "
          "every node certificate verifies against ca.pem",
          "[certs]") {
  temp_dir dir;
  auto r = run_bgagent({"certs", "init", dir.path("pki"), "--nodes",
                        "head,node-a,node_b.2"},
                       dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto at = [&](const std::string& f) { return dir.path("pki/" + f); };

  auto ca = load_cert(at("ca.pem"));
  auto ca_key = load_key(at("ca.key"));
  CHECK(X509_check_private_key(ca.get(), ca_key.get()) == 1);
  CHECK(X509_check_ca(ca.get()) == 1);
  CHECK((X509_get_extension_flags(ca.get()) & EXFLAG_CA) != 0);
  CHECK((X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN) != 0);
  CHECK(X509_check_issued(ca.get(), ca.get()) == X509_V_OK); // self-signed
  CHECK(subject_cn(ca.get()).rfind("bgagent CA ", 0) == 0);
  CHECK(validity(ca.get()) == std::make_pair(825, 0));

  std::set<std::string> serials{serial_hex(ca.get())};
  for (std::string n : {"head", "node-a", "node_b.2"}) {
    INFO(n);
    auto cert = load_cert(at(n + ".pem"));
    auto key = load_key(at(n + ".key"));
    CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
    CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC);
    CHECK(EVP_PKEY_get_bits(key.get()) == 256);
    // A private key matches only its own certificate.
    if (n != "head")
      CHECK(X509_check_private_key(load_cert(at("head.pem")).get(),
                                   key.get()) == 0);
    ERR_clear_error();
    CHECK(subject_cn(cert.get()) == n);
    CHECK(X509_check_ca(cert.get()) == 0);
    CHECK(X509_check_host(cert.get(), n.c_str(), n.size(), 0, nullptr) == 1);
    CHECK(X509_check_host(cert.get(), "localhost", 9, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1);
    CHECK(X509_check_host(cert.get(), "elsewhere", 9, 0, nullptr) == 0);
    auto xku = X509_get_extended_key_usage(cert.get());
    CHECK((xku & XKU_SSL_SERVER) != 0);
    CHECK((xku & XKU_SSL_CLIENT) != 0);
    CHECK(validity(cert.get()) == std::make_pair(825, 0));
    // Random 128-bit serials: at most 128 bits, and not a small counter.
    CHECK(serial_bits(cert.get()) <= 128);
    CHECK(serial_bits(cert.get()) > 64);
    CHECK(serials.insert(serial_hex(cert.get())).second);
    CHECK(X509_check_issued(ca.get(), cert.get()) == X509_V_OK);
    CHECK(verify(at(n + ".pem"), at("ca.pem"), X509_PURPOSE_SSL_SERVER) ==
          X509_V_OK);
    CHECK(verify(at(n + ".pem"), at("ca.pem"), X509_PURPOSE_SSL_CLIENT) ==
          X509_V_OK);
  }

  // Another CA does not vouch for these nodes (and has another name).
  REQUIRE(run_bgagent({"certs", "init", dir.path("other")}, dir.path())
            .exit_code == 0);
  CHECK(subject_cn(load_cert(dir.path("other/ca.pem")).get()) !=
        subject_cn(ca.get()));
  CHECK(verify(at("node-a.pem"), dir.path("other/ca.pem"),
               X509_PURPOSE_SSL_CLIENT) ==
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK(verify(dir.path("other/head.pem"), at("ca.pem"),
               X509_PURPOSE_SSL_CLIENT) ==
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_CASE("certs init --nodes on an existing CA adds nodes signed by it and "
          "leaves the CA alone",
          "[certs]") {
  temp_dir dir;
  auto pki = dir.path("pki");
  REQUIRE(run_bgagent({"certs", "init", pki, "--nodes", "head,node-a"},
                      dir.path())
            .exit_code == 0);
  auto ca_key = read_file(pki + "/ca.key");
  auto ca_pem = read_file(pki + "/ca.pem");
  auto head_pem = read_file(pki + "/head.pem");

  auto r = run_bgagent({"certs", "init", pki, "--nodes", "node-c"},
                       dir.path());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("wrote " + pki + "/node-c.key") != std::string::npos);
  CHECK(r.out.find("wrote " + pki + "/ca.key") == std::string::npos);
  CHECK(r.out.find("BG_AGENT_TLS_CERT=" + pki + "/node-c.pem\n") !=
        std::string::npos);
  CHECK(read_file(pki + "/ca.key") == ca_key);
  CHECK(read_file(pki + "/ca.pem") == ca_pem);
  CHECK(read_file(pki + "/head.pem") == head_pem);
  CHECK(mode_of(pki + "/node-c.key") == 0600);
  CHECK(mode_of(pki + "/node-c.pem") == 0644);
  CHECK(X509_check_private_key(load_cert(pki + "/node-c.pem").get(),
                               load_key(pki + "/node-c.key").get()) == 1);
  CHECK(verify(pki + "/node-c.pem", pki + "/ca.pem", X509_PURPOSE_SSL_CLIENT) ==
        X509_V_OK);

  // A node whose files exist is refused, and so is the whole list it is in:
  // node-d is not written either.
  auto again = run_bgagent({"certs", "init", pki, "--nodes", "node-d,node-c"},
                           dir.path());
  CHECK(again.exit_code == 2);
  CHECK(again.out.empty());
  CHECK(again.err == "bgagent: " + pki +
                       "/node-c.key already exists: refusing to overwrite "
                       "it\n");
  CHECK_FALSE(file_exists(pki + "/node-d.key"));
  CHECK_FALSE(file_exists(pki + "/node-d.pem"));
  // A stray certificate without its key counts as existing too.
  write_file(pki + "/node-e.pem", "mine");
  auto stray = run_bgagent({"certs", "init", pki, "--nodes", "node-e"},
                           dir.path());
  CHECK(stray.exit_code == 2);
  CHECK(stray.err == "bgagent: " + pki +
                       "/node-e.pem already exists: refusing to overwrite "
                       "it\n");
  CHECK(read_file(pki + "/node-e.pem") == "mine");
  CHECK_FALSE(file_exists(pki + "/node-e.key"));
}

TEST_CASE("certs init refuses to overwrite a CA and changes nothing",
          "[certs]") {
  temp_dir dir;
  auto pki = dir.path("pki");
  REQUIRE(run_bgagent({"certs", "init", pki}, dir.path()).exit_code == 0);
  auto ca_key = read_file(pki + "/ca.key");
  auto head_key = read_file(pki + "/head.key");

  auto r = run_bgagent({"certs", "init", pki}, dir.path());
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  // One line, naming the file.
  CHECK(r.err.rfind("bgagent: " + pki + "/ca.key already exists: refusing "
                    "to overwrite it",
                    0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(read_file(pki + "/ca.key") == ca_key);
  CHECK(read_file(pki + "/head.key") == head_key);

  // A key without its certificate is not a CA to grow from either.
  temp_dir half;
  write_file(half.path("ca.key"), "not mine to overwrite");
  auto h = run_bgagent({"certs", "init", half.path(), "--nodes", "node-a"},
                       dir.path());
  CHECK(h.exit_code == 2);
  CHECK(h.err.rfind("bgagent: " + half.path("ca.key") + " already exists",
                    0) == 0);
  CHECK(read_file(half.path("ca.key")) == "not mine to overwrite");
  CHECK_FALSE(file_exists(half.path("node-a.key")));
  CHECK_FALSE(file_exists(half.path("ca.pem")));

  // A CA certificate that is not the key's.
  REQUIRE(run_bgagent({"certs", "init", dir.path("other")}, dir.path())
            .exit_code == 0);
  temp_dir mixed;
  write_file(mixed.path("ca.key"), read_file(pki + "/ca.key"));
  write_file(mixed.path("ca.pem"), read_file(dir.path("other/ca.pem")));
  auto m = run_bgagent({"certs", "init", mixed.path(), "--nodes", "node-a"},
                       dir.path());
  CHECK(m.exit_code == 2);
  CHECK(m.err == "bgagent: " + mixed.path("ca.pem") + ": does not belong to " +
                   mixed.path("ca.key") + "\n");
  CHECK_FALSE(file_exists(mixed.path("node-a.key")));

  // DIR is a file.
  write_file(dir.path("plain"), "x");
  auto f = run_bgagent({"certs", "init", dir.path("plain")}, dir.path());
  CHECK(f.exit_code == 2);
  CHECK(f.err == "bgagent: " + dir.path("plain") + ": not a directory\n");
}

TEST_CASE("certs init refuses a bad node name with exit 2, naming it, and "
          "writes nothing",
          "[certs]") {
  temp_dir dir;
  struct bad {
    std::string nodes, message;
  };
  std::string long_name(65, 'a');
  for (auto& b : std::vector<bad>{
         {"head,../evil", "node name \"../evil\" is not 1 to 64 of"},
         {"node a", "node name \"node a\" is not 1 to 64 of"},
         {"n\xc3\xa9ud", "node name \"n\xc3\xa9ud\" is not 1 to 64 of"},
         {long_name, "node name \"" + long_name + "\" is not 1 to 64 of"},
         {"head,,node-a", "--nodes \"head,,node-a\": empty node name"},
         {"", "--nodes \"\": empty node name"},
         {"ca", "node name \"ca\" is reserved"},
         {"node-a,node-a", "node name \"node-a\" given twice"}}) {
    INFO(b.nodes);
    auto r = run_bgagent({"certs", "init", "pki", "--nodes", b.nodes},
                         dir.path());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(b.message) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(file_exists(dir.path("pki")));
  }
  // 64 characters are fine.
  std::string longest(64, 'b');
  CHECK(run_bgagent({"certs", "init", "pki", "--nodes", longest}, dir.path())
          .exit_code == 0);
  CHECK(file_exists(dir.path("pki/" + longest + ".pem")));
  // Bad usage of the command itself.
  auto no_dir = run_bgagent({"certs", "init"}, dir.path());
  CHECK(no_dir.exit_code == 2);
  CHECK(no_dir.err.rfind("bgagent: ", 0) == 0);
  auto no_sub = run_bgagent({"certs"}, dir.path());
  CHECK(no_sub.exit_code == 2);
}

TEST_CASE("a head and a worker node with certificates from certs init run a "
          "job over mutual TLS",
          "[certs][e2e]") {
  temp_dir dir;
  REQUIRE(run_bgagent({"certs", "init", "pki", "--nodes", "head,node-a"},
                      dir.path())
            .exit_code == 0);
  auto tls = [&](const std::string& name, env_map extra) {
    extra["BG_AGENT_TLS_CERT"] = dir.path("pki/" + name + ".pem");
    extra["BG_AGENT_TLS_KEY"] = dir.path("pki/" + name + ".key");
    extra["BG_AGENT_TLS_CA"] = dir.path("pki/ca.pem");
    return extra;
  };
  write_task_file(dir.path("tasks.jsonl"), 10, "certs");
  int port = free_port();
  // --listen (not the tests' usual --insecure-listen): mutual TLS.
  background_process head({bgagent_binary(), "run", "--workers", "0",
                           "--listen", loopback(port), "--tasks",
                           "tasks.jsonl"},
                          dir.path(),
                          tls("head", with_secret(certs_secret)), "head");
  REQUIRE(wait_for_output(head, "with TLS", 30));
  background_process node(node_args(port, "node-a"), dir.path(),
                          tls("node-a", scripted_node_env(certs_secret, 0)),
                          "node-a");
  INFO(head.err() << node.err());
  REQUIRE(head.wait(60) == 0);
  CHECK(node.wait(30) == 0);
  auto audit = dir.path("bgagent-audit.jsonl");
  auto done = count_events_by_task(audit, "task_completed");
  CHECK(done.size() == 10);
  for (auto& kv : done)
    CHECK(kv.second == 1);
  auto joined = audit_events(audit, "node_joined");
  REQUIRE(joined.size() == 1);
  CHECK(joined[0]["node"] == "node-a");
}
