// `bgagent certs init DIR [--nodes NAME,...]`: a private CA and one
// certificate per node, for the cluster's mutual TLS (DESIGN.md section 7),
// made with the OpenSSL library (no `openssl` program needed).
//
// Contract:
// - A DIR without a CA (made with mode 0700 if missing) gets `ca.key` and
//   `ca.pem`: a self-signed CA (basicConstraints critical CA:TRUE, keyUsage
//   keyCertSign + cRLSign, a random subject "bgagent CA <hex>" so two CAs
//   never look alike); and per node (default: `head`) `NAME.key` and
//   `NAME.pem`: CN=NAME, subjectAltName DNS:NAME, DNS:localhost,
//   IP:127.0.0.1, extendedKeyUsage serverAuth + clientAuth, signed by the
//   CA. Keys are ECDSA P-256 (accepted by caf::openssl: its cipher list
//   "HIGH:!aNULL:!MD5" and TLS 1.3 both include ECDSA). Every certificate is
//   valid for 825 days from an hour ago (clock skew between machines), has
//   a random 128-bit serial and is signed with SHA-256.
// - Keys are written with mode 0600, certificates 0644, each created with
//   O_EXCL: nothing existing is ever overwritten.
// - A DIR with a CA (`ca.key` and `ca.pem`) and `--nodes` grows the
//   cluster: the new nodes are signed by that CA; the CA files are unchanged.
// - Refused with exit 2 and one line, before anything is written: an
//   existing `ca.key` without `--nodes` (naming it), half a CA, a CA whose
//   key does not match its certificate, a node whose files exist (naming the
//   file), a node name outside [A-Za-z0-9._-]{1,64}, the reserved name `ca`,
//   a name given twice, an expired CA. If writing fails midway, the files
//   this run created are removed again.
// - Prints each file written and, per node, the three variables it needs
//   (absolute paths), as lines that can go into the node's `.env`.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "app/commands.hpp"
#include "app/errors.hpp"
#include "app/random_hex.hpp"

namespace bgagent {

namespace {

namespace fs = std::filesystem;

constexpr int validity_days = 825;
constexpr long backdate_seconds = 3600;

struct openssl_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using ossl_ptr = std::unique_ptr<T, openssl_free>;

// The oldest queued OpenSSL error, and the queue emptied.
std::string openssl_error() {
  auto e = ERR_get_error();
  ERR_clear_error();
  if (e == 0)
    return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// An internal failure (exit 1): OpenSSL could not do what always works.
[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + openssl_error());
}

bool valid_node_name(const std::string& n) {
  if (n.empty() || n.size() > 64)
    return false;
  for (unsigned char ch : n)
    if (!std::isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
      return false;
  return true;
}

std::vector<std::string> parse_nodes(const std::string& list) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  std::string::size_type from = 0;
  while (true) {
    auto comma = list.find(',', from);
    auto name = list.substr(from, comma == std::string::npos
                                    ? std::string::npos
                                    : comma - from);
    if (name.empty())
      throw usage_error("--nodes \"" + list + "\": empty node name");
    if (!valid_node_name(name))
      throw usage_error("--nodes: node name \"" + name +
                        "\" is not 1 to 64 of A-Z a-z 0-9 . _ -");
    if (name == "ca")
      throw usage_error("--nodes: node name \"ca\" is reserved for the CA's "
                        "own files");
    if (!seen.insert(name).second)
      throw usage_error("--nodes: node name \"" + name + "\" given twice");
    out.push_back(name);
    if (comma == std::string::npos)
      break;
    from = comma + 1;
  }
  return out;
}

bool exists(const std::string& path) {
  struct stat sb {};
  return ::lstat(path.c_str(), &sb) == 0;
}

ossl_ptr<EVP_PKEY> new_key() {
  ossl_ptr<EVP_PKEY> k{EVP_EC_gen("P-256")};
  if (!k)
    fail("cannot make an ECDSA P-256 key");
  return k;
}

// 128 random bits, never zero (a serial must be positive).
void set_random_serial(X509* x) {
  ossl_ptr<BIGNUM> bn{BN_new()};
  if (!bn)
    fail("cannot make a serial number");
  do {
    if (BN_rand(bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
      fail("cannot make a random serial number");
  } while (BN_is_zero(bn.get()));
  ossl_ptr<ASN1_INTEGER> serial{BN_to_ASN1_INTEGER(bn.get(), nullptr)};
  if (!serial || X509_set_serialNumber(x, serial.get()) != 1)
    fail("cannot set the serial number");
}

void add_name_entry(X509_NAME* name, const char* field,
                    const std::string& value) {
  if (X509_NAME_add_entry_by_txt(
        name, field, MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
        0) != 1)
    fail(std::string("cannot set the subject's ") + field);
}

// `issuer` is null for the self-signed CA (the certificate is its own issuer).
void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
  ossl_ptr<X509_EXTENSION> ext{
    X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str())};
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    fail(std::string("cannot add the extension ") + OBJ_nid2sn(nid) + " = " +
         value);
}

struct cert_spec {
  std::string common_name;
  bool ca = false;
  std::string dns_name; // node certificates: the node's name
};

// A certificate for `key`, signed by `issuer_key` (and named after
// `issuer`, or after itself when `issuer` is null).
ossl_ptr<X509> make_cert(const cert_spec& spec, EVP_PKEY* key, X509* issuer,
                         EVP_PKEY* issuer_key) {
  ossl_ptr<X509> x{X509_new()};
  if (!x || X509_set_version(x.get(), 2) != 1)
    fail("cannot make a certificate");
  set_random_serial(x.get());
  if (!X509_gmtime_adj(X509_getm_notBefore(x.get()), -backdate_seconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(x.get()), validity_days,
                        -backdate_seconds, nullptr))
    fail("cannot set the validity");
  if (X509_set_pubkey(x.get(), key) != 1)
    fail("cannot set the public key");
  auto* subject = X509_get_subject_name(x.get());
  add_name_entry(subject, "O", "bgagent");
  add_name_entry(subject, "CN", spec.common_name);
  if (X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer)
                                           : subject) != 1)
    fail("cannot set the issuer");
  add_ext(x.get(), issuer, NID_subject_key_identifier, "hash");
  add_ext(x.get(), issuer, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    add_ext(x.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x.get(), issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(x.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x.get(), issuer, NID_subject_alt_name,
            "DNS:" + spec.dns_name + ",DNS:localhost,IP:127.0.0.1");
  }
  if (X509_sign(x.get(), issuer_key, EVP_sha256()) <= 0)
    fail("cannot sign the certificate");
  return x;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  auto n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string key_pem(EVP_PKEY* k) {
  ossl_ptr<BIO> b{BIO_new(BIO_s_mem())};
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr,
                                     nullptr) != 1)
    fail("cannot encode a private key");
  return bio_text(b.get());
}

std::string cert_pem(X509* x) {
  ossl_ptr<BIO> b{BIO_new(BIO_s_mem())};
  if (!b || PEM_write_bio_X509(b.get(), x) != 1)
    fail("cannot encode a certificate");
  return bio_text(b.get());
}

std::string not_after(X509* x) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
    return "?";
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

std::string read_whole(const std::string& path) {
  ossl_ptr<BIO> b{BIO_new_file(path.c_str(), "r")};
  if (!b) {
    ERR_clear_error();
    throw usage_error(path + ": cannot read the file");
  }
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(b.get(), buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

// What this run wrote, removed again unless commit() is called (a run that
// fails midway leaves the directory as it found it).
class new_files {
public:
  ~new_files() {
    if (committed_)
      return;
    for (auto i = files_.rbegin(); i != files_.rend(); ++i)
      ::unlink(i->c_str());
    if (!dir_.empty())
      ::rmdir(dir_.c_str());
  }

  void made_dir(const std::string& dir) { dir_ = dir; }

  // Creates `path` with exactly `mode` (never over an existing file).
  void write(const std::string& path, const std::string& data, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    mode);
    if (fd < 0) {
      if (errno == EEXIST)
        throw usage_error(path + " already exists: refusing to overwrite it");
      throw usage_error(path + ": cannot create: " + std::strerror(errno));
    }
    files_.push_back(path);
    bool ok = ::fchmod(fd, mode) == 0; // the umask may have taken bits
    for (size_t done = 0; ok && done < data.size();) {
      auto n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      ok = n > 0;
      if (ok)
        done += static_cast<size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    int err = errno;
    ok = ::close(fd) == 0 && ok;
    if (!ok)
      throw usage_error(path + ": cannot write: " + std::strerror(err));
  }

  void commit() { committed_ = true; }

private:
  std::vector<std::string> files_;
  std::string dir_;
  bool committed_ = false;
};

struct loaded_ca {
  ossl_ptr<EVP_PKEY> key;
  ossl_ptr<X509> cert;
};

loaded_ca load_ca(const std::string& key_path, const std::string& cert_path) {
  loaded_ca ca;
  auto key_text = read_whole(key_path);
  ossl_ptr<BIO> kb{BIO_new_mem_buf(key_text.data(),
                                   static_cast<int>(key_text.size()))};
  ca.key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!ca.key) {
    ERR_clear_error();
    throw usage_error(key_path + ": not an unencrypted PEM private key");
  }
  auto cert_text = read_whole(cert_path);
  ossl_ptr<BIO> cb{BIO_new_mem_buf(cert_text.data(),
                                   static_cast<int>(cert_text.size()))};
  ca.cert.reset(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!ca.cert) {
    ERR_clear_error();
    throw usage_error(cert_path + ": not a PEM certificate");
  }
  if (X509_check_ca(ca.cert.get()) != 1)
    throw usage_error(cert_path + ": not a CA certificate");
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    ERR_clear_error();
    throw usage_error(cert_path + ": does not belong to " + key_path);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(ca.cert.get())) <= 0)
    throw usage_error(cert_path + ": the CA expired on " +
                      not_after(ca.cert.get()) +
                      "; make a new one in another directory");
  return ca;
}

} // namespace

int certs_init_command(const certs_options& o) {
  auto nodes = parse_nodes(o.nodes_given ? o.nodes : "head");
  if (o.dir.empty())
    throw usage_error("certs init: DIR is empty");
  // Paths as the user wrote them (for messages), and absolute (for the
  // variables, which must work from any working directory).
  std::string dir = o.dir;
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  std::error_code ec;
  auto abs_dir = fs::absolute(dir, ec).lexically_normal().string();
  if (ec)
    throw usage_error(dir + ": " + ec.message());
  while (abs_dir.size() > 1 && abs_dir.back() == '/')
    abs_dir.pop_back();
  auto in = [](const std::string& d, const std::string& file) {
    return d == "/" ? "/" + file : d + "/" + file;
  };
  auto ca_key = in(dir, "ca.key"), ca_pem = in(dir, "ca.pem");

  // Everything is checked before anything is written.
  bool dir_exists = false;
  struct stat sb {};
  if (::stat(dir.c_str(), &sb) == 0) {
    if (!S_ISDIR(sb.st_mode))
      throw usage_error(dir + ": not a directory");
    dir_exists = true;
  } else if (errno != ENOENT) {
    throw usage_error(dir + ": " + std::strerror(errno));
  }
  bool has_key = dir_exists && exists(ca_key);
  bool has_pem = dir_exists && exists(ca_pem);
  if (has_key && !has_pem)
    throw usage_error(ca_key + " already exists (without ca.pem): refusing "
                               "to overwrite it");
  if (has_pem && !has_key)
    throw usage_error(ca_pem + " already exists (without ca.key): refusing "
                               "to overwrite it");
  bool grow = has_key && has_pem;
  if (grow && !o.nodes_given)
    throw usage_error(ca_key + " already exists: refusing to overwrite it "
                               "(to add nodes signed by this CA: bgagent "
                               "certs init " + dir + " --nodes NAME,...)");
  if (dir_exists)
    for (auto& n : nodes)
      for (auto* ext : {".key", ".pem"})
        if (exists(in(dir, n + ext)))
          throw usage_error(in(dir, n + ext) +
                            " already exists: refusing to overwrite it");
  loaded_ca ca;
  if (grow)
    ca = load_ca(ca_key, ca_pem);

  // Make everything in memory, then write.
  std::string ca_key_pem, ca_cert_pem;
  if (!grow) {
    ca.key = new_key();
    ca.cert = make_cert({"bgagent CA " + random_hex(4), true, {}},
                        ca.key.get(), nullptr, ca.key.get());
    ca_key_pem = key_pem(ca.key.get());
    ca_cert_pem = cert_pem(ca.cert.get());
  }
  struct node_files {
    std::string name, key, cert, until;
  };
  std::vector<node_files> made;
  for (auto& n : nodes) {
    auto k = new_key();
    auto x = make_cert({n, false, n}, k.get(), ca.cert.get(), ca.key.get());
    made.push_back({n, key_pem(k.get()), cert_pem(x.get()),
                    not_after(x.get())});
  }

  new_files out;
  if (!dir_exists) {
    auto parent = fs::path(dir).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent, ec);
      if (ec)
        throw usage_error(parent.string() + ": cannot create: " + ec.message());
    }
    if (::mkdir(dir.c_str(), 0700) != 0)
      throw usage_error(dir + ": cannot create: " + std::strerror(errno));
    out.made_dir(dir);
    if (::chmod(dir.c_str(), 0700) != 0)
      throw usage_error(dir + ": cannot set mode 0700: " +
                        std::strerror(errno));
  }
  std::vector<std::string> lines;
  if (!grow) {
    out.write(ca_key, ca_key_pem, 0600);
    out.write(ca_pem, ca_cert_pem, 0644);
    lines.push_back("wrote " + ca_key + " (the CA's private key, mode 0600: "
                    "keep it off the nodes, it admits new ones)");
    lines.push_back("wrote " + ca_pem + " (the CA certificate, valid until " +
                    not_after(ca.cert.get()) + ")");
  } else {
    lines.push_back("signing with the CA in " + ca_pem + " (valid until " +
                    not_after(ca.cert.get()) + "; node certificates stop "
                    "verifying when it expires)");
  }
  for (auto& m : made) {
    out.write(in(dir, m.name + ".key"), m.key, 0600);
    out.write(in(dir, m.name + ".pem"), m.cert, 0644);
    lines.push_back("wrote " + in(dir, m.name + ".key") + " (mode 0600) and " +
                    in(dir, m.name + ".pem") + " (CN=" + m.name +
                    ", valid until " + m.until + ")");
  }
  out.commit();

  for (auto& l : lines)
    std::cout << l << "\n";
  for (auto& m : made)
    std::cout << "\n# node " << m.name << ": its environment (or .env)\n"
              << "BG_AGENT_TLS_CERT=" << in(abs_dir, m.name + ".pem") << "\n"
              << "BG_AGENT_TLS_KEY=" << in(abs_dir, m.name + ".key") << "\n"
              << "BG_AGENT_TLS_CA=" << in(abs_dir, "ca.pem") << "\n";
  std::cout.flush();
  return exit_code::ok;
}

} // namespace bgagent
