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
    DDB2OS_ALWAYS_INLINE tape_node& append() {
        if (size_ == capacity_) grow();
        return data_[size_++];
    }

private:
    DDB2OS_NOINLINE void grow() { reserve(capacity_ < 64 ? 64 : capacity_ * 2); }
    std::unique_ptr<tape_node[]> data_;
    std::size_t size_ = 0, capacity_ = 0;
};

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
        stack_.clear();
        p_ = in.data();
        end_ = in.data() + in.size();
        run();
    }

private:
    std::vector<std::uint32_t> stack_;
    const char* p_ = nullptr;
    const char* end_ = nullptr;

    [[noreturn]] void fail(const char* what) const {
        const auto at = static_cast<std::size_t>(p_ - input.data());
        if (p_ >= end_) throw error(errc::json_syntax, "byte " + std::to_string(at) + ": unexpected end of input, " + what);
        throw error(errc::json_syntax, "byte " + std::to_string(at) + ": " + what);
    }

    void skip_ws() noexcept {
        // Every token starts above ' ', and compact JSON (what Lambda delivers) has no spaces.
        if (p_ < end_ && static_cast<unsigned char>(*p_) > ' ') return;
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    std::uint32_t offset() const noexcept { return static_cast<std::uint32_t>(p_ - input.data()); }

    DDB2OS_ALWAYS_INLINE std::uint32_t push(value_kind k, std::uint32_t off, std::uint32_t len, std::uint8_t flags) {
        const auto i = static_cast<std::uint32_t>(nodes.size());
        // Field by field into the buffer: a node built on the stack and copied as one 16-byte
        // load after four narrow stores stalls store-to-load forwarding (it was 60% of run()).
        tape_node& n = nodes.append();
        n.offset = off;
        n.length = len;
        n.next = i + 1;
        n.kind = k;
        n.flags = flags;
        return i;
    }

#if defined(__SSE2__)
    // The 16 bytes at p as bit masks: quotes, and what else stops a plain string (backslashes and
    // control characters).
    struct block_marks {
        unsigned quotes, others;
    };
    static DDB2OS_ALWAYS_INLINE block_marks marks(const char* p) noexcept {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i ctrl = _mm_set1_epi8(0x1F);
        const __m128i other = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
                                           _mm_cmpeq_epi8(_mm_max_epu8(v, ctrl), ctrl));
        return {static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')))),
                static_cast<unsigned>(_mm_movemask_epi8(other))};
    }
#endif

    // At the opening quote. Most strings close within a few 16-byte blocks with no backslash or
    // control character on the way: that path is inlined into run(); the rest is string_rest().
    DDB2OS_ALWAYS_INLINE void string() {
        ++p_;
        const char* start = p_;
#if defined(__SSE2__)
        while (end_ - p_ >= 16) {
            const block_marks m = marks(p_);
            const unsigned q = m.quotes, other = m.others;
            if ((q | other) != 0) {
                // The closing quote comes before any backslash or control character: done,
                // without reading the byte again (that load would wait for the block's mask).
                if (q != 0 && (q & (0u - q)) <= (other & (0u - other)) - 1u) {
                    p_ += __builtin_ctz(q);
                    push(value_kind::string, static_cast<std::uint32_t>(start - input.data()),
                         static_cast<std::uint32_t>(p_ - start), 0);
                    ++p_;
                    return;
                }
                break;
            }
            p_ += 16;
        }
#endif
        string_rest(start);
    }

    // From p_ (all before it plain text) to the closing quote: escapes, control characters, and
    // the input's last 15 bytes.
    DDB2OS_NOINLINE void string_rest(const char* start) {
        std::uint8_t flags = 0;
        for (;;) {
#if defined(__SSE2__)
            while (end_ - p_ >= 16) {
                const block_marks m = marks(p_);
                if ((m.quotes | m.others) != 0) {
                    p_ += __builtin_ctz(m.quotes | m.others);
                    break;
                }
                p_ += 16;
            }
#endif
            while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) ++p_;
            if (p_ >= end_) fail("expected '\"' to close a string");
            const char c = *p_;
            if (c == '"') break;
            if (c == '\\') {
                flags = 1;
                if (end_ - p_ < 2) { p_ = end_; fail("expected an escape sequence"); }
                const char e = p_[1];
                if (e == 'u') {
                    if (end_ - p_ < 6) { p_ = end_; fail("expected 4 hex digits after \\u"); }
                    for (int k = 2; k < 6; ++k)
                        if (hex_value(p_[k]) < 0) { p_ += k; fail("expected 4 hex digits after \\u"); }
                    p_ += 6;
                } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                    p_ += 2;
                } else {
                    ++p_;
                    fail("invalid escape sequence in a string");
                }
                continue;
            }
            fail("control character in a string (it must be escaped)");
        }
        const auto off = static_cast<std::uint32_t>(start - input.data());
        push(value_kind::string, off, static_cast<std::uint32_t>(p_ - start), flags);
        ++p_;  // closing quote
    }

    void number() {
        const char* start = p_;
        if (*p_ == '-') ++p_;
        if (p_ < end_ && *p_ == '0') {
            ++p_;
        } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
            while (p_ < end_ && is_digit(*p_)) ++p_;
        } else {
            fail("expected a digit in a number");
        }
        if (p_ < end_ && *p_ == '.') {
            ++p_;
            if (p_ >= end_ || !is_digit(*p_)) fail("expected a digit after '.' in a number");
            while (p_ < end_ && is_digit(*p_)) ++p_;
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ >= end_ || !is_digit(*p_)) fail("expected a digit in a number's exponent");
            while (p_ < end_ && is_digit(*p_)) ++p_;
        }
        push(value_kind::number, static_cast<std::uint32_t>(start - input.data()),
             static_cast<std::uint32_t>(p_ - start), 0);
    }

    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

    void literal(std::string_view word, value_kind k, std::uint8_t flags) {
        if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
            fail("expected a JSON value");
        push(k, offset(), static_cast<std::uint32_t>(word.size()), flags);
        p_ += word.size();
    }

    // At '{' or '[': its node. True when a member or element follows (the container is then open
    // on the stack), false when `close` follows at once.
    DDB2OS_ALWAYS_INLINE bool open(value_kind k, char close) {
        const std::uint32_t i = push(k, offset(), 0, 0);
        ++p_;
        skip_ws();
        if (p_ < end_ && *p_ == close) {
            ++p_;
            return false;
        }
        stack_.push_back(i);
        ++nodes[i].length;
        return true;
    }

    void close_top() {
        const std::uint32_t i = stack_.back();
        stack_.pop_back();
        nodes[i].next = static_cast<std::uint32_t>(nodes.size());
        ++p_;
    }

    // The grammar as a state machine whose every transition is its own jump (as simdjson's stage
    // 2): each branch site sees one context, so the predictor learns DynamoDB JSON's regular shape
    // (a loop over a state variable shares one site for all of them).
    void run() {
    value:
        skip_ws();
        if (p_ >= end_) fail("expected a JSON value");
        if (*p_ == '"') {
            string();
            goto after;
        }
        if (*p_ == '{') {
            if (open(value_kind::object, '}')) goto key;
            goto after;
        }
        if (*p_ == '[') {
            if (open(value_kind::array, ']')) goto value;
            goto after;
        }
        switch (*p_) {
            case 't': literal("true", value_kind::boolean, 1); break;
            case 'f': literal("false", value_kind::boolean, 0); break;
            case 'n': literal("null", value_kind::null, 0); break;
            default:
                if (*p_ == '-' || is_digit(*p_)) number();
                else fail("expected a JSON value");
        }
        goto after;

    key:
        skip_ws();
        if (p_ >= end_ || *p_ != '"') fail("expected a string key in an object");
        string();
        skip_ws();
        if (p_ >= end_ || *p_ != ':') fail("expected ':' after an object key");
        ++p_;
        goto value;

    after:
        skip_ws();
        if (stack_.empty()) {
            if (p_ != end_) fail("unexpected characters after the JSON value");
            return;
        }
        if (p_ >= end_) fail("expected ',' or the end of an array or object");
        {
            tape_node& top = nodes[stack_.back()];
            const char c = *p_;
            if (c == ',') {
                ++p_;
                ++top.length;
                if (top.kind == value_kind::object) goto key;
                goto value;
            }
            if ((c == '}' && top.kind == value_kind::object) || (c == ']' && top.kind == value_kind::array)) {
                close_top();
                goto after;
            }
            fail(top.kind == value_kind::object ? "expected ',' or '}' after an object member"
                                                : "expected ',' or ']' after an array element");
        }
    }
};

}  // namespace detail
DDB2OS_END_NAMESPACE
