// bulk.hpp: a DynamoDB Streams event -> OpenSearch `_bulk` bodies (NDJSON).
//
// INSERT and MODIFY become `index` with the unmarshalled NewImage; REMOVE becomes `delete`.
// Within one call only the last change per (index, _id) is emitted, so no body holds two
// actions for one document (when the last cannot be written, the one it superseded is emitted
// instead). Bodies are cut at max_bytes / max_actions, never inside a record.
// One bad record never stops the others: it is reported with its SequenceNumber, eventID, the
// path inside the record and the reason. Every action maps back to the record it came from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/raw_json.hpp"
#include "config.hpp"
#include "document_id.hpp"
#include "error.hpp"
#include "index_name.hpp"
#include "normalize.hpp"
#include "unmarshal.hpp"
#include "value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

struct bulk_options {
    // Empty: each record's table name, lowercased. Otherwise a fixed index name, or a template
    // where {table} stands for the lowercased table name.
    std::string index;
    // Table name -> ordered key attribute names (partition key, then sort key).
    std::map<std::string, key_schema, std::less<>> key_schemas;
    number_mode numbers = number_mode::exact;
    list_policy lists = list_policy::stringify;
    std::size_t max_bytes = default_max_bulk_bytes;
    std::size_t max_actions = default_max_bulk_actions;
    // When nonzero (and below max_bytes), the first body is cut at this size: a sender can start on
    // it while the rest of the batch is written (sync_engine pipelines this way).
    std::size_t first_max_bytes = 0;
    // TTL deletes (userIdentity Service / dynamodb.amazonaws.com) are emitted unless this is set,
    // which keeps expired items searchable.
    bool skip_ttl_deletes = false;
    // Every action carries "version": the record's ApproximateCreationDateTime in microseconds,
    // with "version_type": "external_gte", so an older write never overwrites a newer one.
    bool external_versions = false;
    // Top-level attributes left out of every document, by exact name (unmarshal_options::exclude);
    // when include_attributes is not empty, the only ones documents keep (unmarshal_options::include).
    std::vector<std::string> exclude_attributes{};
    std::vector<std::string> include_attributes{};
};

enum class record_status : unsigned char { emitted, superseded, skipped_ttl, failed };

// A record's text in a result (its sequence number, event ID, index and _id): up to 48 bytes are
// kept in the object itself, longer text on the heap. A result holds four per record, and most
// need a std::string's allocation (an event ID has 32 characters, a sequence number up to 40):
// leaving two of them out made a transform of small items 7% faster. Reads as a
// std::string_view; converts to std::string.
class record_text {
public:
    static constexpr std::size_t inline_capacity = 48;

    record_text() noexcept : size_(0), heap_(false) {}
    explicit record_text(std::string_view s) : record_text() { assign(s); }
    record_text(const record_text& o) : record_text() { assign(o.view()); }
    record_text(record_text&& o) noexcept : record_text() { take(o); }
    record_text& operator=(const record_text& o) {
        if (this != &o) assign(o.view());
        return *this;
    }
    record_text& operator=(record_text&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    record_text& operator=(std::string_view s) {
        assign(s);
        return *this;
    }
    ~record_text() { release(); }

    // `s` may be a view into this text itself.
    void assign(std::string_view s) {
        if (s.size() <= inline_capacity) {
            char* const old = heap_ ? u_.ptr : nullptr;  // the buffer's first bytes overlay the pointer
            std::memmove(u_.buf, s.data(), s.size());
            delete[] old;
            heap_ = false;
        } else {
            char* const p = new char[s.size()];
            std::memcpy(p, s.data(), s.size());
            release();
            u_.ptr = p;
            heap_ = true;
        }
        size_ = s.size();
    }

    const char* data() const noexcept { return heap_ ? u_.ptr : u_.buf; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data(), size_}; }
    operator std::string_view() const noexcept { return view(); }
    operator std::string() const { return std::string(data(), size_); }

    friend bool operator==(const record_text& a, const record_text& b) noexcept { return a.view() == b.view(); }
    friend bool operator==(const record_text& a, std::string_view b) noexcept { return a.view() == b; }
    friend bool operator==(std::string_view a, const record_text& b) noexcept { return a == b.view(); }
    friend bool operator!=(const record_text& a, const record_text& b) noexcept { return !(a == b); }
    friend bool operator!=(const record_text& a, std::string_view b) noexcept { return !(a == b); }
    friend bool operator!=(std::string_view a, const record_text& b) noexcept { return !(a == b); }

private:
    void release() noexcept {
        if (heap_) delete[] u_.ptr;
        heap_ = false;
        size_ = 0;
    }
    void take(record_text& o) noexcept {  // this text is empty and inline
        if (o.heap_) {
            u_.ptr = o.u_.ptr;
            heap_ = true;
            o.heap_ = false;
        } else {
            std::memcpy(u_.buf, o.u_.buf, o.size_);
        }
        size_ = o.size_;
        o.size_ = 0;
    }

    union {
        char buf[inline_capacity];
        char* ptr;
    } u_;
    std::size_t size_;
    bool heap_;
};

struct record_info {
    record_text sequence_number;
    record_text event_id;
    record_status status = record_status::failed;
    bool ttl_delete = false;
    record_text index;  // where its action goes (empty when the record failed before that)
    record_text id;     // its document _id
    std::int64_t version = -1;  // external version, or -1
};

struct record_error {
    std::size_t record = 0;  // index in Records
    std::string sequence_number;
    std::string event_id;
    errc code = errc::ok;
    std::string path;
    std::string message;

    std::string id() const { return std::string(error_id(code)); }
    std::string what() const { return "[ddb2os." + id() + "] " + (path.empty() ? "" : path + ": ") + message; }
    // One JSON line, as the CLI writes to stderr.
    std::string to_json() const {
        std::string s;
        detail::string_sink out{s};
        s += "{\"record\":" + std::to_string(record) + ",\"sequence_number\":";
        detail::write_string(out, sequence_number);
        s += ",\"event_id\":";
        detail::write_string(out, event_id);
        s += ",\"error\":\"" + id() + "\",\"path\":";
        detail::write_string(out, path);
        s += ",\"message\":";
        detail::write_string(out, message);
        s += '}';
        return s;
    }
};

struct bulk_body {
    std::string data;                   // NDJSON, every line ends with '\n'
    std::vector<std::uint32_t> records; // the record (index in Records) of each action, in order
    std::vector<std::uint32_t> offsets; // where each action starts in data (it ends where the next starts)

    std::string_view action(std::size_t i) const noexcept {
        const std::size_t end = i + 1 < offsets.size() ? offsets[i + 1] : data.size();
        return std::string_view(data).substr(offsets[i], end - offsets[i]);
    }
};

struct bulk_result {
    std::vector<bulk_body> bodies;
    std::vector<record_error> errors;
    std::vector<record_info> records;  // one per input record
    std::size_t actions = 0;
    std::size_t superseded = 0;
    std::size_t skipped_ttl = 0;
    std::size_t ttl_deletes = 0;
};

// "1700000000", "1700000000.123456", "1.7E9" (seconds) -> microseconds since the epoch, exactly
// (finer digits are dropped). DynamoDB Streams give seconds; the same records delivered through
// Kinesis Data Streams give milliseconds or microseconds (ApproximateCreationDateTimePrecision),
// told apart by size: 1e11 seconds is the year 5138, 1e11 milliseconds 1973, 1e14 microseconds
// 1973. False for anything negative, non-numeric or out of range (1e17 and above: no unit gives a
// time before the year 5138, and a nanosecond time read as microseconds would freeze the document).
// A negative zero is zero: nlohmann reads the JSON number -0 as 0, and both readers must agree.
inline bool epoch_microseconds(std::string_view text, std::int64_t& out) noexcept {
    detail::number_parts p;
    if (detail::parse_number(text, p) != detail::number_status::ok) return false;
    const auto zero = [](std::string_view digits) { return digits.find_first_not_of('0') == std::string_view::npos; };
    if (p.negative && !(zero(p.int_digits) && zero(p.frac_digits))) return false;
    long exp = 0;
    if (!p.exponent.empty()) {
        std::size_t i = 0;
        const bool neg = p.exponent[0] == '-';
        if (p.exponent[0] == '-' || p.exponent[0] == '+') i = 1;
        for (; i < p.exponent.size(); ++i) {
            exp = exp * 10 + (p.exponent[i] - '0');
            if (exp > 100) return false;
        }
        if (neg) exp = -exp;
    }
    // The value times 10^shift, its fraction dropped.
    const auto scaled = [&](long shift, std::int64_t& v) {
        const long point = static_cast<long>(p.int_digits.size()) + exp + shift;  // digits before the point
        const long total = static_cast<long>(p.int_digits.size() + p.frac_digits.size());
        v = 0;
        for (long k = 0; k < point; ++k) {
            const char d = k < total ? (k < static_cast<long>(p.int_digits.size())
                                            ? p.int_digits[static_cast<std::size_t>(k)]
                                            : p.frac_digits[static_cast<std::size_t>(k) - p.int_digits.size()])
                                     : '0';
            if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return false;
            v = v * 10 + (d - '0');
        }
        return true;
    };
    std::int64_t whole = 0;
    if (!scaled(0, whole) || whole >= 100000000000000000) return false;  // 1e17 µs: 5138 again (no unit fits)
    return scaled(whole >= 100000000000000 ? 0 : whole >= 100000000000 ? 3 : 6, out);
}

// Throws error(option.invalid) for options that cannot work.
inline void validate(const bulk_options& o) {
    if (o.max_actions == 0) throw error(errc::option_invalid, "max_actions must be at least 1");
    if (o.max_bytes < 64) throw error(errc::option_invalid, "max_bytes must be at least 64");
    // A body's action offsets are 32-bit.
    if (o.max_bytes > max_bulk_bytes_limit)
        throw error(errc::option_invalid, "max_bytes must be at most " + std::to_string(max_bulk_bytes_limit));
    if (o.first_max_bytes != 0 && o.first_max_bytes < 64)
        throw error(errc::option_invalid, "first_max_bytes must be 0 or at least 64");
    for (const auto& [table, schema] : o.key_schemas) {
        const std::string problem = key_schema_problem(schema);
        if (!problem.empty()) throw error(errc::option_invalid, "the key schema of table '" + table + "' " + problem);
    }
    for (const std::string& name : o.exclude_attributes)
        if (name.empty()) throw error(errc::option_invalid, "an excluded attribute name is empty");
    for (const std::string& name : o.include_attributes)
        if (name.empty()) throw error(errc::option_invalid, "an included attribute name is empty");
    index_namer check(o.index);
}

namespace detail {

// Whether a record's eventSource value is DynamoDB's: the string "aws:dynamodb", written with escapes or
// not. The plain case inline: every record of a batch is asked.
template <class A>
DDB2OS_NOINLINE bool escaped_dynamodb_source(typename A::value v, std::string& scratch) {
    std::string_view text;
    std::string message;
    return string_text<A>(v, scratch, text, message) == errc::ok && text == "aws:dynamodb";
}
template <class A>
DDB2OS_ALWAYS_INLINE bool dynamodb_source(typename A::value v, std::string& scratch) {
    if (A::kind(v) != value_kind::string) return false;
    const string_ref s = A::string(v);
    return s.escaped ? escaped_dynamodb_source<A>(v, scratch) : s.text == "aws:dynamodb";
}

template <class A>
class bulk_builder {
public:
    using value = typename A::value;

    bulk_builder(const bulk_options& o, std::size_t size_hint)
        : opt_(o),
          namer_(o.index),
          doc_opt_{o.numbers, o.lists, true, o.exclude_attributes, o.include_attributes},
          size_hint_(size_hint),
          emitter_(doc_opt_, err_) {
        validate(o);
    }

    // All three stages.
    bulk_result run(value event) {
        prepare(event);
        bulk_body b;
        while (next_body(b)) result_.bodies.push_back(std::move(b));
        return finish();
    }

    // Stage 1: reads every record, decides its action and drops superseded changes. Afterwards
    // result().records holds every record's sequence number and status.
    void prepare(value event) {
        value records{};
        bare_ = A::kind(event) == value_kind::array;
        if (bare_) {
            records = event;
        } else if (A::kind(event) != value_kind::object || !A::find(event, "Records", records) ||
                   A::kind(records) != value_kind::array) {
            throw error(errc::event_not_object,
                        "the event must be an object with a \"Records\" array (or an array of records)");
        }
        const std::size_t n = A::size(records);
        result_.records.resize(n);
        plans_.resize(n);
        std::uint32_t r = 0;
        A::each_element(records, [&](value rec) {
            plan(r++, rec);
            return true;
        });
        collapse();
        // The output is about the size of the input; without a hint (a Python dict), start small
        // and grow, rather than clearing max_bytes for a few actions.
        const std::size_t hint = size_hint_ != 0 ? size_hint_ : std::size_t{64} * 1024;
        capacity_ = (hint < opt_.max_bytes ? hint : opt_.max_bytes) + 1024;
        body_ = out_buffer(capacity_);
    }

    // Stage 2: the next body, complete, or false when every action is written. A record that
    // cannot be written becomes its error here. The first body is cut at first_max_bytes when
    // that is set (a sender can start on it while the rest is written).
    bool next_body(bulk_body& out) {
        while (next_ < plans_.size()) {
            std::uint32_t r = next_++;
            if (plans_[r].action == op::none) continue;
            const std::size_t start = body_.size();
            bool written = write_one(r, start);
            while (!written && plans_[r].replaced != no_record) {
                // The document's last change could not be written: the change it superseded is
                // sent instead (after the records between them: they are other documents), so the
                // index is not left older than the batch's last good image. Failing too, the one
                // before, and so on.
                r = plans_[r].replaced;
                plans_[r].action = plans_[r].held;
                result_.records[r].status = record_status::emitted;
                --result_.superseded;
                written = write_one(r, start);
            }
            if (!written) continue;
            ++result_.actions;
            const std::size_t limit = bodies_ == 0 && opt_.first_max_bytes != 0 && opt_.first_max_bytes < opt_.max_bytes
                                          ? opt_.first_max_bytes
                                          : opt_.max_bytes;
            if (!current_.records.empty() && (current_.records.size() == opt_.max_actions || body_.size() > limit)) {
                // This record opens the next body; the ones before it are complete.
                std::string rest(body_.view(start));
                body_.truncate(start);
                take_current(out);
                // Bodies cut at max_actions are small: the next starts near the last one's size, not the
                // input's (with --max-actions 1, every body held an input-sized buffer).
                body_ = out_buffer(std::min(capacity_, 2 * out.data.size() + 1024));
                body_.put(rest);
                current_.records.push_back(r);
                current_.offsets.push_back(0);
                return true;
            }
            current_.records.push_back(r);
            current_.offsets.push_back(static_cast<std::uint32_t>(start));
        }
        if (current_.records.empty()) return false;
        take_current(out);
        return true;
    }

    // Writes record r's action (and document) at the end of the body, or fails the record (an
    // error in its image, or too large) and leaves the body as it was.
    bool write_one(std::uint32_t r, std::size_t start) {
        const plan_t& p = plans_[r];
        write_action(body_, p, result_.records[r]);
        if (p.action == op::index) {
            emitter_.reset_path("dynamodb.NewImage");
            if (!emitter_.image(body_, p.image)) {
                body_.truncate(start);
                fail(r, err_.code, std::move(err_.path), std::move(err_.message));
                err_ = path_error{};
                return false;
            }
            body_.put('\n');
        }
        const std::size_t size = body_.size() - start;
        if (size > opt_.max_bytes) {
            body_.truncate(start);
            fail(r, errc::record_too_large, "",
                 "the record's action and document take " + std::to_string(size) + " bytes, more than max_bytes (" +
                     std::to_string(opt_.max_bytes) + ")");
            return false;
        }
        return true;
    }

    // What prepare() found (records, counts) and what next_body() has added (errors) so far.
    const bulk_result& result() const noexcept { return result_; }

    // Stage 3: the result, with the bodies run() collected (next_body's callers keep their own).
    bulk_result finish() {
        std::stable_sort(result_.errors.begin(), result_.errors.end(),
                         [](const record_error& a, const record_error& b) { return a.record < b.record; });
        return std::move(result_);
    }

private:
    using name_memo = typename adapter_name_memo<A>::type;
    enum class op : unsigned char { none, index, remove };
    static constexpr std::uint32_t no_record = ~std::uint32_t{0};
    // A record's action (its index and _id are in its record_info).
    struct plan_t {
        op action = op::none;
        op held = op::none;                  // a superseded record's action, kept to revive it
        std::uint32_t replaced = no_record;  // the change to the same document this one superseded
        value image{};
        std::int64_t version = -1;
    };

    const bulk_options& opt_;
    index_namer namer_;
    unmarshal_options doc_opt_;
    std::size_t size_hint_;
    path_error err_;
    json_emitter<A> emitter_;
    // next_body's state: the next plan to write, the body being written and its actions.
    std::uint32_t next_ = 0;
    std::size_t capacity_ = 0, bodies_ = 0;
    out_buffer body_;
    bulk_body current_;
    bulk_result result_;
    std::vector<plan_t> plans_;
    name_memo record_memo_, ddb_memo_;  // pick's, for the records and their dynamodb objects
    bool bare_ = false;  // the event is an array of records (no "Records" object around it)
    std::string scratch_, name_scratch_, arn_scratch_, id_scratch_;
    // The last table seen and its index (index_for).
    std::string cached_table_, cached_index_, cached_problem_;
    bool cached_ok_ = false, cached_valid_ = false;
    // The streams seen (up to max_streams, then the oldest is replaced): an unescaped ARN naming a
    // table with a valid index, and what it led to. A Lambda batch holds one stream; a Kinesis one
    // can hold several tables, interleaved (with one ARN remembered, a third of the records of a
    // two-table batch parsed their ARN and looked their table up again).
    struct stream {
        std::string arn, table, index;
        const key_schema* schema;
    };
    static constexpr std::size_t max_streams = 8;
    std::vector<stream> streams_;
    std::size_t next_stream_ = 0;

    void fail(std::uint32_t r, errc code, std::string path, std::string message) {
        record_info& info = result_.records[r];
        info.status = record_status::failed;
        plans_[r].action = op::none;
        result_.errors.push_back(record_error{r, info.sequence_number, info.event_id, code, std::move(path),
                                              std::move(message)});
    }

    // Named members of an object, found in one pass over it (a record is read for five names, its
    // dynamodb object for five). With a duplicated name the last one wins, as in A::find. Also
    // for a Python dict, where five hashed lookups measured slower than the walk.
    struct field {
        value v{};
        bool found = false;
    };
    template <std::size_t N>
    void pick(value obj, const std::string_view (&names)[N], field (&out)[N], name_memo& memo) {
        if constexpr (!std::is_same_v<name_memo, no_name_memo>) {
            A::each_named_member(obj, names, memo, [&](int slot, value v) { out[slot] = field{v, true}; });
        } else {
            (void)memo;
            A::each_member(obj, [&](string_ref k, value v) {
                std::string_view name = k.text;
                if (k.escaped) {
                    if (!unescape_json(k.text, scratch_)) return true;
                    name = scratch_;
                }
                // Lengths, then bytes, written out: string_view's compare() was left a call per name here.
                for (std::size_t i = 0; i < N; ++i)
                    if (name.size() == names[i].size() && std::memcmp(name.data(), names[i].data(), name.size()) == 0) {
                        out[i] = field{v, true};
                        break;
                    }
                return true;
            });
        }
    }

    // A string field, decoded: a view of the input, or of `scratch` when it held escapes.
    // Missing: false with `missing` set.
    static bool string_field(const field& f, std::string_view& out, std::string& scratch, bool& missing, bool& wrong) {
        missing = !f.found;
        wrong = false;
        if (missing) return false;
        if (A::kind(f.v) != value_kind::string) {
            wrong = true;
            return false;
        }
        std::string msg;
        if (string_text<A>(f.v, scratch, out, msg) != errc::ok) {
            wrong = true;
            return false;
        }
        return true;
    }
    bool string_field(const field& f, record_text& out, bool& missing, bool& wrong) {
        std::string_view text;
        if (!string_field(f, text, scratch_, missing, wrong)) return false;
        out.assign(text);
        return true;
    }

    // A record of another source (a Kinesis data stream's, an SQS queue's) fails the whole event:
    // each would otherwise become its own error (no dynamodb object), and a host that dead-letters
    // those and acknowledges the batch would consume a stream that was never DynamoDB's. Read in
    // the same pass as the record's other fields, so the check costs no scan of its own.
    DDB2OS_ALWAYS_INLINE void check_source(std::uint32_t r, value v) {
        if (!dynamodb_source<A>(v, scratch_)) refuse_source(r, v);
    }
    [[noreturn]] DDB2OS_NOINLINE void refuse_source(std::uint32_t r, value v) {
        std::string_view text;
        std::string msg;
        const bool is_string = A::kind(v) == value_kind::string;
        const bool readable = is_string && string_text<A>(v, scratch_, text, msg) == errc::ok;
        std::string m = "ddb2os reads DynamoDB Streams records; this one's eventSource is ";
        if (!is_string) {
            m += "not the string \"aws:dynamodb\" but " + detail::a_kind_of<A>(v);
        } else if (!readable) {
            m += "not valid Unicode";
        } else {
            quote_for_message(m, text);
            if (text == "aws:kinesis") m += " (a Kinesis data stream's: read the table's DynamoDB stream instead)";
        }
        throw error(errc::event_not_object, (bare_ ? "[" : "Records[") + std::to_string(r) + "].eventSource", m);
    }

    void plan(std::uint32_t r, value rec) {
        record_info& info = result_.records[r];
        if (A::kind(rec) != value_kind::object)
            return fail(r, errc::record_not_object, "", "a record must be an object, not " + detail::a_kind_of<A>(rec));
        static constexpr std::string_view record_names[] = {"dynamodb", "eventID", "eventName", "eventSourceARN",
                                                            "userIdentity", "eventSource"};
        field rf[6];
        pick(rec, record_names, rf, record_memo_);
        const field &f_ddb = rf[0], &f_event_id = rf[1], &f_event_name = rf[2], &f_arn = rf[3], &f_user = rf[4];
        if (rf[5].found) check_source(r, rf[5].v);
        static constexpr std::string_view ddb_names[] = {"SequenceNumber", "Keys", "NewImage",
                                                         "ApproximateCreationDateTime", "StreamViewType"};
        field df[5];
        const bool has_ddb = f_ddb.found && A::kind(f_ddb.v) == value_kind::object;
        if (has_ddb) pick(f_ddb.v, ddb_names, df, ddb_memo_);
        const field &f_seq = df[0], &f_keys = df[1], &f_new = df[2], &f_time = df[3], &f_view = df[4];

        bool missing = false, wrong = false;
        string_field(f_event_id, info.event_id, missing, wrong);
        if (has_ddb) string_field(f_seq, info.sequence_number, missing, wrong);

        std::string_view event_name;
        if (!string_field(f_event_name, event_name, name_scratch_, missing, wrong))
            return fail(r, missing ? errc::record_missing_field : errc::record_bad_field, "eventName",
                        missing ? "the record has no eventName"
                        : A::kind(f_event_name.v) == value_kind::string ? "eventName is not valid Unicode"
                                                                        : "eventName must be a string");
        if (!has_ddb) {
            if (!f_ddb.found)
                return fail(r, errc::record_missing_field, "dynamodb", "the record has no dynamodb object");
            return fail(r, errc::record_bad_field, "dynamodb", "dynamodb must be an object, not " + detail::a_kind_of<A>(f_ddb.v));
        }
        plan_t& p = plans_[r];
        if (event_name == "REMOVE") {
            p.action = op::remove;
        } else if (event_name == "INSERT" || event_name == "MODIFY") {
            p.action = op::index;
        } else {
            std::string m = "eventName ";
            quote_for_message(m, event_name);
            return fail(r, errc::record_event_name, "eventName", m + " is not INSERT, MODIFY or REMOVE");
        }

        // The same ARN bytes as a stream seen before mean the same table, index and key schema
        // (no UTF-8 check, parse or lookup again).
        const bool plain_arn = f_arn.found && A::kind(f_arn.v) == value_kind::string && !A::string(f_arn.v).escaped;
        const stream* seen = nullptr;
        if (plain_arn) {
            const std::string_view text = A::string(f_arn.v).text;
            for (const stream& s : streams_)
                if (s.arn == text) {
                    seen = &s;
                    break;
                }
        }
        std::string_view table, index;
        const key_schema* schema = nullptr;
        if (seen != nullptr) {
            table = seen->table;
            index = seen->index;
            schema = seen->schema;
        } else {
            std::string_view arn;
            string_field(f_arn, arn, arn_scratch_, missing, wrong);
            table = table_from_arn(arn);
            if (namer_.uses_table() && table.empty())
                return fail(r, missing ? errc::record_missing_field : errc::record_bad_field, "eventSourceARN",
                            missing ? "the record has no eventSourceARN, so its table (and index) is unknown"
                            : wrong ? (A::kind(f_arn.v) == value_kind::string
                                           ? std::string("eventSourceARN is not valid UTF-8")
                                           : "eventSourceARN must be a string (a DynamoDB stream's ARN), not " + detail::a_kind_of<A>(f_arn.v))
                                    : "eventSourceARN names no table, so the record's index is unknown");
            if (!index_for(table)) return fail(r, errc::index_invalid, "eventSourceARN", cached_problem_);
            const auto it = opt_.key_schemas.find(table);
            schema = it == opt_.key_schemas.end() ? nullptr : &it->second;  // null: none in the options
            table = cached_table_;
            index = cached_index_;
            if (plain_arn) {
                stream s{std::string(arn), cached_table_, cached_index_, schema};
                if (streams_.size() < max_streams) streams_.push_back(std::move(s));
                else streams_[next_stream_++ % max_streams] = std::move(s);
            }
        }
        info.index = index;

        if (!f_keys.found)
            return fail(r, errc::record_missing_field, "dynamodb.Keys", "the record has no dynamodb.Keys");
        path_error err;
        if (!document_id<A>(f_keys.v, schema, table, id_scratch_, err, "dynamodb.Keys"))
            return fail(r, err.code, std::move(err.path), std::move(err.message));
        info.id = id_scratch_;

        // With versions on, a record without a readable time fails: written unversioned, a replayed
        // old change would overwrite a newer document, the one thing the versions are there to stop.
        if (opt_.external_versions) {
            static constexpr const char* time_path = "dynamodb.ApproximateCreationDateTime";
            if (!f_time.found)
                return fail(r, errc::record_missing_field, time_path,
                            "the record has no dynamodb.ApproximateCreationDateTime, which its version is taken from");
            const value t = f_time.v;
            std::string scratch, msg;
            std::string_view txt;
            if (A::kind(t) == value_kind::number) txt = A::number_text(t, scratch);
            else if (A::kind(t) == value_kind::string && string_text<A>(t, scratch, txt, msg) != errc::ok)
                txt = {};  // decoded as every other field is: JSON may escape any character
            if (!epoch_microseconds(txt, p.version))
                return fail(r, errc::record_bad_field, time_path,
                            "dynamodb.ApproximateCreationDateTime must be a time since 1970 in seconds, milliseconds "
                            "or microseconds, as a number or its text (the record's version is taken from it)");
        }
        if (p.action == op::remove) {
            value type{}, principal{};
            info.ttl_delete = f_user.found && A::kind(f_user.v) == value_kind::object &&
                              A::find(f_user.v, "type", type) && is_string(type, "Service") &&
                              A::find(f_user.v, "principalId", principal) &&
                              is_string(principal, "dynamodb.amazonaws.com");
            if (info.ttl_delete) {
                ++result_.ttl_deletes;
                if (opt_.skip_ttl_deletes) {
                    info.status = record_status::skipped_ttl;
                    p.action = op::none;
                    ++result_.skipped_ttl;
                    return;
                }
            }
        } else if (!f_new.found) {
            std::string_view view;
            string_field(f_view, view, scratch_, missing, wrong);
            return fail(r, errc::record_no_new_image, "dynamodb.NewImage",
                        "a" + std::string(event_name == "INSERT" ? "n " : " ") + std::string(event_name) +
                            " record needs dynamodb.NewImage, which " +
                            (view.empty() ? std::string("this stream view") : "stream view " + std::string(view)) +
                            " does not carry; set the stream view to NEW_IMAGE or NEW_AND_OLD_IMAGES");
        } else {
            p.image = f_new.v;
        }
        info.status = record_status::emitted;
        info.version = p.version;
    }

    bool is_string(value v, std::string_view s) {
        if (A::kind(v) != value_kind::string) return false;
        const string_ref ref = A::string(v);
        if (!ref.escaped) return ref.text == s;
        return unescape_json(ref.text, scratch_) && scratch_ == s;
    }

    // Makes cached_table_ the table and cached_index_ its index; false (cached_problem_ says why)
    // when the table's index name is invalid.
    bool index_for(std::string_view table) {
        if (!cached_valid_ || table != cached_table_) {
            cached_table_.assign(table.data(), table.size());
            cached_ok_ = namer_.name_for(table, cached_index_, cached_problem_);
            cached_valid_ = true;
        }
        return cached_ok_;
    }

    // Only the last change per (index, _id) survives. An open-addressing table of record numbers
    // (no node or key string per record: the plans hold the index and _id).
    void collapse() {
        std::size_t cap = 16;
        while (cap < plans_.size() * 2) cap *= 2;
        std::vector<std::uint32_t> slots(cap, 0);  // record + 1; 0 = empty
        const std::hash<std::string_view> hash;
        for (std::uint32_t r = 0; r < plans_.size(); ++r) {
            plan_t& p = plans_[r];
            if (p.action == op::none) continue;
            const record_info& info = result_.records[r];
            std::size_t h = hash(info.id) ^ (hash(info.index) * 0x9E3779B97F4A7C15ull);
            for (;; ++h) {
                std::uint32_t& slot = slots[h & (cap - 1)];
                if (slot == 0) {
                    slot = r + 1;
                    break;
                }
                const std::uint32_t earlier = slot - 1;
                if (result_.records[earlier].id == info.id && result_.records[earlier].index == info.index) {
                    plans_[earlier].held = plans_[earlier].action;
                    plans_[earlier].action = op::none;
                    p.replaced = earlier;
                    result_.records[earlier].status = record_status::superseded;
                    ++result_.superseded;
                    slot = r + 1;
                    break;
                }
            }
        }
    }

    void write_action(out_buffer& out, const plan_t& p, const record_info& info) {
        out.put(p.action == op::index ? std::string_view("{\"index\":{\"_index\":") : std::string_view("{\"delete\":{\"_index\":"));
        write_string(out, info.index);
        out.put(std::string_view(",\"_id\":"));
        write_string(out, info.id);
        if (p.version >= 0) {
            out.put(std::string_view(",\"version\":"));
            out.put(std::to_string(p.version));
            out.put(std::string_view(",\"version_type\":\"external_gte\""));
        }
        out.put(std::string_view("}}\n"));
    }

    void take_current(bulk_body& out) {
        out.records = std::move(current_.records);
        out.offsets = std::move(current_.offsets);
        out.data = body_.take();
        current_.records.clear();
        current_.offsets.clear();
        ++bodies_;
    }

};

}  // namespace detail

// Bulk bodies from an event read through any value adapter.
template <class A>
bulk_result build_bulk(typename A::value event, const bulk_options& options = {}, std::size_t size_hint = 0) {
    return detail::bulk_builder<A>(options, size_hint).run(event);
}

// Bulk bodies from the raw bytes of an event (the fast path). Throws error(json.syntax) when the
// bytes are not JSON and error(event.shape) when they are not an event.
inline bulk_result build_bulk(std::string_view event_json, const bulk_options& options = {}) {
    const raw_json_document doc(event_json);
    return build_bulk<raw_json_adapter>(doc.root(), options, event_json.size());
}

DDB2OS_END_NAMESPACE
