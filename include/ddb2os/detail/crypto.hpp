// detail/crypto.hpp: SHA-256, HMAC-SHA256 and hex through OpenSSL (libcrypto).
// One place that includes OpenSSL, so the rest of the library stays free of it.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <string>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The SHA256_CTX functions are deprecated in OpenSSL 3 (still shipped); only hmac_sha256_key uses them.
#if defined(__GNUC__) || defined(__clang__)
#define DDB2OS_DETAIL_NO_DEPRECATED_BEGIN \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define DDB2OS_DETAIL_NO_DEPRECATED_END _Pragma("GCC diagnostic pop")
#else
#define DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
#define DDB2OS_DETAIL_NO_DEPRECATED_END
#endif

#include "../config.hpp"
#include "../error.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

using sha256_digest = std::array<unsigned char, 32>;

// OpenSSL 3's one-shot SHA256() fetches the algorithm by name on every call (a lock and string compares,
// more than the hashing of a short text); the SHA256_CTX functions go straight to the block function.
inline sha256_digest sha256(std::string_view data) noexcept {
    sha256_digest out{};
#if !defined(OPENSSL_NO_DEPRECATED_3_0)
    SHA256_CTX ctx;
    DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data.data(), data.size());
    SHA256_Final(out.data(), &ctx);
    DDB2OS_DETAIL_NO_DEPRECATED_END
#else
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
#endif
    return out;
}

// Incremental SHA-256 for payloads that arrive in pieces (streamed or gzip-compressed bodies).
class sha256_stream {
public:
    sha256_stream() : ctx_(EVP_MD_CTX_new()) {
        if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
            EVP_MD_CTX_free(ctx_);
            throw error("crypto.init", "cannot initialise SHA-256");
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

// HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once: signing is then two SHA-256
// finishes. OpenSSL 3's one-shot HMAC() looks the algorithm up and allocates on every call (about 2 us);
// this takes a fraction of that. Uses the SHA256_CTX functions OpenSSL 3 deprecates but still ships, and
// falls back to HMAC() where they are compiled out.
#if defined(OPENSSL_NO_DEPRECATED_3_0)
#define DDB2OS_DETAIL_HMAC_PREPARED 0
#else
#define DDB2OS_DETAIL_HMAC_PREPARED 1
#endif

class hmac_sha256_key {
public:
    explicit hmac_sha256_key(std::string_view key) noexcept {
#if DDB2OS_DETAIL_HMAC_PREPARED
        unsigned char block[64] = {};
        if (key.size() > sizeof block) {
            const sha256_digest d = sha256(key);
            std::memcpy(block, d.data(), d.size());
        } else if (!key.empty()) {
            std::memcpy(block, key.data(), key.size());
        }
        unsigned char pad[64];
        for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
        DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
        SHA256_Init(&inner_);
        SHA256_Update(&inner_, pad, sizeof pad);
        for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
        SHA256_Init(&outer_);
        SHA256_Update(&outer_, pad, sizeof pad);
        DDB2OS_DETAIL_NO_DEPRECATED_END
        OPENSSL_cleanse(block, sizeof block);
        OPENSSL_cleanse(pad, sizeof pad);
#else
        key_.assign(key.data(), key.size());
#endif
    }
    hmac_sha256_key(const hmac_sha256_key&) = default;
    hmac_sha256_key& operator=(const hmac_sha256_key&) = default;
    ~hmac_sha256_key() {
#if DDB2OS_DETAIL_HMAC_PREPARED
        OPENSSL_cleanse(&inner_, sizeof inner_);
        OPENSSL_cleanse(&outer_, sizeof outer_);
#else
        OPENSSL_cleanse(&key_[0], key_.size());
#endif
    }

    // The key with the start of every message it will sign already hashed: with_prefix(p).sign(rest)
    // equals sign(p + rest). A signer whose messages share their first line(s) hashes them once.
    hmac_sha256_key with_prefix(std::string_view prefix) const {
        hmac_sha256_key k(*this);
#if DDB2OS_DETAIL_HMAC_PREPARED
        DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
        SHA256_Update(&k.inner_, prefix.data(), prefix.size());
        DDB2OS_DETAIL_NO_DEPRECATED_END
#else
        k.prefix_.append(prefix.data(), prefix.size());
#endif
        return k;
    }

    // noexcept where the pads are prepared; the fallback builds the message in a string.
    sha256_digest sign(std::string_view data) const noexcept(DDB2OS_DETAIL_HMAC_PREPARED != 0) {
        sha256_digest out{};
#if DDB2OS_DETAIL_HMAC_PREPARED
        SHA256_CTX ctx = inner_;
        DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
        SHA256_Update(&ctx, data.data(), data.size());
        SHA256_Final(out.data(), &ctx);
        ctx = outer_;
        SHA256_Update(&ctx, out.data(), out.size());
        SHA256_Final(out.data(), &ctx);
        DDB2OS_DETAIL_NO_DEPRECATED_END
        OPENSSL_cleanse(&ctx, sizeof ctx);
#else
        unsigned int n = 0;
        std::string message = prefix_;
        message.append(data.data(), data.size());
        HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &n);
#endif
        return out;
    }

private:
#if DDB2OS_DETAIL_HMAC_PREPARED
    SHA256_CTX inner_{};
    SHA256_CTX outer_{};
#else
    std::string key_, prefix_;
#endif
};

// SHA-256 of texts that often begin with the same 64 bytes (a signer's canonical requests to one
// host and path): the state after that first block is kept and reused while the block matches.
class sha256_first_block_cache {
public:
    sha256_digest hash(std::string_view data) noexcept {
#if DDB2OS_DETAIL_HMAC_PREPARED
        if (data.size() < sizeof block_) return sha256(data);
        DDB2OS_DETAIL_NO_DEPRECATED_BEGIN
        if (!valid_ || std::memcmp(block_, data.data(), sizeof block_) != 0) {
            SHA256_Init(&after_block_);
            SHA256_Update(&after_block_, data.data(), sizeof block_);
            std::memcpy(block_, data.data(), sizeof block_);
            valid_ = true;
        }
        SHA256_CTX ctx = after_block_;
        SHA256_Update(&ctx, data.data() + sizeof block_, data.size() - sizeof block_);
        sha256_digest out{};
        SHA256_Final(out.data(), &ctx);
        DDB2OS_DETAIL_NO_DEPRECATED_END
        return out;
#else
        return sha256(data);
#endif
    }

private:
#if DDB2OS_DETAIL_HMAC_PREPARED
    SHA256_CTX after_block_{};
    char block_[64] = {};
    bool valid_ = false;
#endif
};

inline sha256_digest hmac_sha256(std::string_view key, std::string_view data) noexcept(DDB2OS_DETAIL_HMAC_PREPARED != 0) {
    return hmac_sha256_key(key).sign(data);
}

inline std::string_view as_view(const sha256_digest& d) noexcept {
    return {reinterpret_cast<const char*>(d.data()), d.size()};
}

inline void append_hex(std::string& out, const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    // Written in a local buffer, then appended: stores through the string's own pointer made the
    // compiler reload it after every byte (a char store may alias anything).
    char buf[128];
    while (n > 0) {
        const std::size_t k = n < sizeof buf / 2 ? n : sizeof buf / 2;
        std::size_t i = 0;
#if defined(__SSE2__)
        // 16 bytes at a time (a signature writes two 32-byte hashes): the nibbles interleaved, and
        // 'a' - '0' - 10 added to those above 9. A table lookup per nibble was 4% of a signature.
        const __m128i low4 = _mm_set1_epi8(0x0F), nine = _mm_set1_epi8(9), zero = _mm_set1_epi8('0'),
                      letter = _mm_set1_epi8('a' - '0' - 10);
        for (; i + 16 <= k; i += 16) {
            const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low4), lo = _mm_and_si128(x, low4);
            __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
            a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), letter));
            b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), letter));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(buf + 2 * i), a);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(buf + 2 * i + 16), b);
        }
#endif
        for (; i < k; ++i) {
            buf[2 * i] = digits[p[i] >> 4];
            buf[2 * i + 1] = digits[p[i] & 0x0F];
        }
        out.append(buf, 2 * k);
        p += k;
        n -= k;
    }
}

inline std::string hex(const sha256_digest& d) {
    std::string s;
    append_hex(s, d.data(), d.size());
    return s;
}

}  // namespace detail
DDB2OS_END_NAMESPACE
