// detail/crypto.hpp: SHA-256, HMAC-SHA256 and hex through OpenSSL (libcrypto).
// One place that includes OpenSSL, so the rest of the library stays free of it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "../config.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

using sha256_digest = std::array<unsigned char, 32>;

inline sha256_digest sha256(std::string_view data) noexcept {
    sha256_digest out{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
    return out;
}

// Incremental SHA-256 for payloads that arrive in pieces (streamed or gzip-compressed bodies).
class sha256_stream {
public:
    sha256_stream() : ctx_(EVP_MD_CTX_new()) {
        if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
            EVP_MD_CTX_free(ctx_);
            throw std::runtime_error("[ddb2os.crypto.init] cannot initialise SHA-256");
        }
    }
    sha256_stream(const sha256_stream&) = delete;
    sha256_stream& operator=(const sha256_stream&) = delete;
    ~sha256_stream() { EVP_MD_CTX_free(ctx_); }

    void update(std::string_view data) noexcept { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
    sha256_digest finish() noexcept {
        sha256_digest out{};
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx_, out.data(), &n);
        return out;
    }

private:
    EVP_MD_CTX* ctx_;
};

inline sha256_digest hmac_sha256(std::string_view key, std::string_view data) noexcept {
    sha256_digest out{};
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &n);
    return out;
}

inline std::string_view as_view(const sha256_digest& d) noexcept {
    return {reinterpret_cast<const char*>(d.data()), d.size()};
}

inline void append_hex(std::string& out, const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    const std::size_t at = out.size();
    out.resize(at + 2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        out[at + 2 * i] = digits[p[i] >> 4];
        out[at + 2 * i + 1] = digits[p[i] & 0x0F];
    }
}

inline std::string hex(const sha256_digest& d) {
    std::string s;
    append_hex(s, d.data(), d.size());
    return s;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
