// detail/json_tape.hpp: a strict (RFC 8259) JSON reader that indexes raw bytes into a flat
// tape of nodes, without copying or decoding strings.
//
// Why not nlohmann's DOM or SAX: both decode every string into a std::string (an allocation and
// a copy) that ddb2os would then re-escape; the tape keeps spans into the input, so an S value
// with nothing to escape is copied once, straight into the bulk body. The reader is iterative
// (no recursion), so any nesting depth is safe; DynamoDB's 32-level limit is enforced later,
// per record, where a violation is that record's error and not the whole event's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../config.hpp"
#include "../error.hpp"
#include "../value_adapter.hpp"
#include "writer.hpp"

DDB2OS_BEGIN_NAMESPACE
namespace detail {

struct tape_node {
    std::uint32_t offset;  // string: first byte after the quote; others: first byte
    std::uint32_t length;  // string/number: bytes; array/object: children (members for objects)
    std::uint32_t next;    // index of the node after this subtree
    value_kind kind;
    std::uint8_t flags;    // string: 1 = has escapes; boolean: 1 = true
};

// The tape's storage. std::vector's emplace_back value-initializes each node before it is
// written and, in the reader's large loop, was not inlined (5% of a transform); here appending is
// one compare and the node's own stores.
class node_buffer {
public:
    node_buffer() = default;
    node_buffer(const node_buffer& o) : node_buffer() { *this = o; }
    node_buffer(node_buffer&& o) noexcept
        : data_(std::move(o.data_)), size_(std::exchange(o.size_, 0)), capacity_(std::exchange(o.capacity_, 0)) {}
    node_buffer& operator=(const node_buffer& o) {
        if (this != &o) {
            size_ = 0;
            reserve(o.size_);
            if (o.size_ != 0) std::memcpy(data_.get(), o.data_.get(), o.size_ * sizeof(tape_node));
            size_ = o.size_;
        }
        return *this;
    }
    node_buffer& operator=(node_buffer&& o) noexcept {
        data_ = std::move(o.data_);
        size_ = std::exchange(o.size_, 0);
        capacity_ = std::exchange(o.capacity_, 0);
        return *this;
    }

    std::size_t size() const noexcept { return size_; }
    const tape_node& operator[](std::size_t i) const noexcept { return data_[i]; }
    tape_node& operator[](std::size_t i) noexcept { return data_[i]; }
    void clear() noexcept { size_ = 0; }
    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        std::unique_ptr<tape_node[]> bigger(new tape_node[n]);  // not zeroed: pages never written stay unmapped
        if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_ * sizeof(tape_node));
        data_ = std::move(bigger);
        capacity_ = n;
    }
    // The reader writes nodes through data() and sets the size when it is done (or must grow).
    tape_node* data() noexcept { return data_.get(); }
    std::size_t capacity() const noexcept { return capacity_; }
    void set_size(std::size_t n) noexcept { size_ = n; }
    DDB2OS_NOINLINE void grow() { reserve(capacity_ < 64 ? 64 : capacity_ * 2); }
    DDB2OS_ALWAYS_INLINE tape_node& append() {
        if (size_ == capacity_) grow();
        return data_[size_++];
    }

private:
    std::unique_ptr<tape_node[]> data_;
    std::size_t size_ = 0, capacity_ = 0;
};

inline unsigned trailing_zeros(std::uint64_t x) noexcept {  // x != 0
#if defined(__GNUC__) || defined(__clang__)
    return static_cast<unsigned>(__builtin_ctzll(x));
#else
    unsigned n = 0;
    for (; (x & 1) == 0; x >>= 1) ++n;
    return n;
#endif
}

class json_tape {
public:
    std::string_view input;
    node_buffer nodes;

    // Throws ddb2os::error (json.syntax) naming the byte offset and what was expected.
    void parse(std::string_view in) {
        if (in.size() >= 0xFFFFFFF0u) throw error(errc::json_syntax, "input larger than 4 GiB");
        input = in;
        nodes.clear();
        // DynamoDB JSON has a node every 7-11 bytes. Reserving for one every 6 bytes avoids the vector's
        // reallocation (a copy and, for a moment, both buffers resident); pages never written stay unmapped.
        nodes.reserve(in.size() / 6 + 16);
        run();
    }

private:
    // An open container: its node, its children so far, whether it is an object.
    struct frame {
        std::uint32_t node, count;
        bool object;
    };
    std::vector<frame> frames_;  // the open containers around the innermost one

    DDB2OS_NOINLINE void grow_frames() { frames_.resize(frames_.size() < 16 ? 16 : frames_.size() * 2); }

    [[noreturn]] DDB2OS_NOINLINE void fail(const char* at_ptr, const char* what) const {
        const auto at = static_cast<std::size_t>(at_ptr - input.data());
        if (at >= input.size()) throw error(errc::json_syntax, "byte " + std::to_string(at) + ": unexpected end of input, " + what);
        throw error(errc::json_syntax, "byte " + std::to_string(at) + ": " + what);
    }

    // Every token starts above ' ', and compact JSON (what Lambda delivers) has no spaces.
    static DDB2OS_ALWAYS_INLINE const char* skip_ws(const char* p, const char* end) noexcept {
        if (p < end && static_cast<unsigned char>(*p) > ' ') return p;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
        return p;
    }

    // The 16 bytes at p as bit masks: quotes, and what else stops a plain string (backslashes and
    // control characters).
    struct block_marks {
        unsigned quotes, others;
    };
    static DDB2OS_ALWAYS_INLINE block_marks marks(const char* p) noexcept {
#if defined(__SSE2__)
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i ctrl = _mm_set1_epi8(0x1F);
        const __m128i other = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
                                           _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl));
        return {static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')))),
                static_cast<unsigned>(_mm_movemask_epi8(other))};
#else
        block_marks m{0, 0};
        for (unsigned i = 0; i < 16; ++i) {
            const auto c = static_cast<unsigned char>(p[i]);
            m.quotes |= unsigned{c == '"'} << i;
            m.others |= unsigned{c == '\\' || c < 0x20} << i;
        }
        return m;
#endif
    }

    // From p (all from start to p plain text) to the closing quote: escapes, control characters,
    // and the input's last 15 bytes. Returns the closing quote's address; flags 1 if escaped.
    DDB2OS_NOINLINE const char* string_rest(const char* p, const char* end, std::uint8_t& flags) const {
        for (;;) {
            while (end - p >= 16) {
                const block_marks m = marks(p);
                if ((m.quotes | m.others) != 0) {
                    p += trailing_zeros(m.quotes | m.others);
                    break;
                }
                p += 16;
            }
            while (p < end && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
            if (p >= end) fail(p, "expected '\"' to close a string");
            const char c = *p;
            if (c == '"') return p;
            if (c == '\\') {
                flags = 1;
                if (end - p < 2) fail(end, "expected an escape sequence");
                const char e = p[1];
                if (e == 'u') {
                    if (end - p < 6) fail(end, "expected 4 hex digits after \\u");
                    for (int k = 2; k < 6; ++k)
                        if (hex_value(p[k]) < 0) fail(p + k, "expected 4 hex digits after \\u");
                    p += 6;
                } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                    p += 2;
                } else {
                    fail(p + 1, "invalid escape sequence in a string");
                }
                continue;
            }
            fail(p, "control character in a string (it must be escaped)");
        }
    }

    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

    // At a number's first byte: the byte after it.
    const char* number_end(const char* p, const char* end) const {
        if (*p == '-') ++p;
        if (p < end && *p == '0') {
            ++p;
        } else if (p < end && *p >= '1' && *p <= '9') {
            while (p < end && is_digit(*p)) ++p;
        } else {
            fail(p, "expected a digit in a number");
        }
        if (p < end && *p == '.') {
            ++p;
            if (p >= end || !is_digit(*p)) fail(p, "expected a digit after '.' in a number");
            while (p < end && is_digit(*p)) ++p;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            ++p;
            if (p < end && (*p == '+' || *p == '-')) ++p;
            if (p >= end || !is_digit(*p)) fail(p, "expected a digit in a number's exponent");
            while (p < end && is_digit(*p)) ++p;
        }
        return p;
    }

    // The grammar as a state machine whose every transition is its own jump (as simdjson's stage
    // 2): each branch site sees one context, so the predictor learns DynamoDB JSON's regular shape
    // (a loop over a state variable shares one site for all of them). Its state lives in locals:
    // as members, every node store (char-typed fields alias anything) made the compiler write
    // the input position back and read the buffer's pointers again.
    void run() {
        const char* const base = input.data();
        const char* const end = base + input.size();
        const char* p = base;
        tape_node* nd = nodes.data();
        std::uint32_t n = 0;
        std::uint32_t cap = static_cast<std::uint32_t>(nodes.capacity());
        frame* fr = frames_.data();
        std::size_t depth = 0;
        std::uint32_t cur = 0, count = 0;  // the innermost open container and its children so far
        bool in_object = false;

        // A node, written field by field (one built on the stack and copied as a 16-byte load after
        // narrow stores stalls store forwarding: it was 60% of the reader once).
        const auto push = [&](value_kind k, const char* at, std::uint32_t len, std::uint8_t flags) DDB2OS_ALWAYS_INLINE_LAMBDA {
            if (n == cap) {
                nodes.set_size(n);
                nodes.grow();
                nd = nodes.data();
                cap = static_cast<std::uint32_t>(nodes.capacity());
            }
            tape_node& x = nd[n];
            x.offset = static_cast<std::uint32_t>(at - base);
            x.length = len;
            x.next = n + 1;
            x.kind = k;
            x.flags = flags;
            ++n;
        };
        // The 64-byte window of the input (at a multiple of 64 from its start) that the last string
        // ended in, as bit masks: its quotes, and its backslashes and control characters. A short
        // string then ends in a shift and a count of trailing zeros, instead of a load, compares
        // and a mask extraction on the path from one string to the next.
        const char* wbase = base;
        std::uint64_t wq = 0, wo = 0;
        const auto window = [&](const char* w) DDB2OS_ALWAYS_INLINE_LAMBDA {
            wbase = w;
            const char* src = w;
            alignas(16) char tail[64];
            if (end - w < 64) {
                std::memset(tail, ' ', sizeof tail);
                if (end > w) std::memcpy(tail, w, static_cast<std::size_t>(end - w));
                src = tail;
            }
            const block_marks m0 = marks(src), m1 = marks(src + 16), m2 = marks(src + 32), m3 = marks(src + 48);
            wq = std::uint64_t{m0.quotes} | std::uint64_t{m1.quotes} << 16 | std::uint64_t{m2.quotes} << 32 |
                 std::uint64_t{m3.quotes} << 48;
            wo = std::uint64_t{m0.others} | std::uint64_t{m1.others} << 16 | std::uint64_t{m2.others} << 32 |
                 std::uint64_t{m3.others} << 48;
        };
        window(base);
        // At the opening quote: the string's node; p after the closing quote.
        const auto string = [&]() DDB2OS_ALWAYS_INLINE_LAMBDA {
            const char* const start = ++p;
            std::size_t off = static_cast<std::size_t>(start - wbase);
            if (off >= 64) {
                window(base + ((static_cast<std::size_t>(start - base)) & ~std::size_t{63}));
                off = static_cast<std::size_t>(start - wbase);
            }
            for (;;) {
                const std::uint64_t q = wq >> off, o = wo >> off;
                if ((q | o) != 0) {
                    if (q != 0 && (q & (0 - q)) <= (o & (0 - o)) - 1) {
                        p = wbase + off + trailing_zeros(q);
                        push(value_kind::string, start, static_cast<std::uint32_t>(p - start), 0);
                        ++p;
                        return;
                    }
                    break;
                }
                if (end - wbase <= 64) break;
                window(wbase + 64);
                off = 0;
            }
            std::uint8_t flags = 0;
            p = string_rest(start, end, flags);
            push(value_kind::string, start, static_cast<std::uint32_t>(p - start), flags);
            ++p;
        };
        // Container node i (with its first member or element) becomes the innermost open one.
        const auto enter = [&](std::uint32_t i, bool object) DDB2OS_ALWAYS_INLINE_LAMBDA {
            if (depth == frames_.size()) {
                grow_frames();
                fr = frames_.data();
            }
            fr[depth++] = frame{cur, count, in_object};
            cur = i;
            count = 1;
            in_object = object;
        };
        // At '{' or '[': its node; true when a member or element follows (the container is then
        // the innermost open one), false when `close` follows at once.
        const auto open = [&](value_kind k, char close) DDB2OS_ALWAYS_INLINE_LAMBDA {
            const std::uint32_t i = n;
            push(k, p, 0, 0);
            p = skip_ws(p + 1, end);
            if (p < end && *p == close) {
                ++p;
                return false;
            }
            enter(i, k == value_kind::object);
            return true;
        };
        const auto literal = [&](std::string_view word, value_kind k, std::uint8_t flags) DDB2OS_ALWAYS_INLINE_LAMBDA {
            if (static_cast<std::size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0)
                fail(p, "expected a JSON value");
            push(k, p, static_cast<std::uint32_t>(word.size()), flags);
            p += word.size();
        };

    value:
        p = skip_ws(p, end);
        if (p >= end) fail(p, "expected a JSON value");
        if (*p == '"') {
            string();
            goto after;
        }
        if (*p == '{') {
            // DynamoDB JSON's attribute value, {"S":"..."} (any one-byte key, compact): the object
            // and its key at once, and a string value closed in place, without the key and value
            // states' tests (a third of the reader's nodes are in these).
            if (end - p >= 8) {
                std::uint64_t w;
                std::memcpy(&w, p, 8);
                const auto x = static_cast<unsigned char>(w >> 16);
                if ((w & 0x000000FFFF00FFFFull) == 0x0000003A2200227Bull && x >= 0x20 && x != '"' && x != '\\') {
                    const std::uint32_t obj = n;
                    push(value_kind::object, p, 0, 0);
                    push(value_kind::string, p + 2, 1, 0);
                    p += 5;
                    if (*p != '"') {
                        enter(obj, true);
                        goto value;
                    }
                    string();
                    if (p < end && *p == '}') {
                        ++p;
                        nd[obj].length = 1;
                        nd[obj].next = n;
                        goto after;
                    }
                    enter(obj, true);
                    goto after;
                }
            }
            if (open(value_kind::object, '}')) goto key;
            goto after;
        }
        if (*p == '[') {
            if (open(value_kind::array, ']')) goto value;
            goto after;
        }
        switch (*p) {
            case 't': literal("true", value_kind::boolean, 1); break;
            case 'f': literal("false", value_kind::boolean, 0); break;
            case 'n': literal("null", value_kind::null, 0); break;
            default:
                if (*p == '-' || is_digit(*p)) {
                    const char* e = number_end(p, end);
                    push(value_kind::number, p, static_cast<std::uint32_t>(e - p), 0);
                    p = e;
                } else {
                    fail(p, "expected a JSON value");
                }
        }
        goto after;

    key:
        p = skip_ws(p, end);
        if (p >= end || *p != '"') fail(p, "expected a string key in an object");
        string();
        p = skip_ws(p, end);
        if (p >= end || *p != ':') fail(p, "expected ':' after an object key");
        ++p;
        goto value;

    after:
        p = skip_ws(p, end);
        if (depth == 0) {
            if (p != end) fail(p, "unexpected characters after the JSON value");
            nodes.set_size(n);
            return;
        }
        if (p >= end) fail(p, "expected ',' or the end of an array or object");
        {
            const char c = *p;
            if (c == ',') {
                ++p;
                ++count;
                if (in_object) goto key;
                goto value;
            }
            if (c == (in_object ? '}' : ']')) {
                ++p;
                nd[cur].length = count;
                nd[cur].next = n;
                const frame& f = fr[--depth];
                cur = f.node;
                count = f.count;
                in_object = f.object;
                goto after;
            }
            fail(p, in_object ? "expected ',' or '}' after an object member"
                              : "expected ',' or ']' after an array element");
        }
    }
};

}  // namespace detail
DDB2OS_END_NAMESPACE
