// sync.hpp: the sync engine. A batch of DynamoDB stream records goes in; OpenSearch ends up equal
// to the table; nothing is lost; the caller learns exactly which records to retry.
//
//   records -> bulk bodies (bulk.hpp, with external versions) -> POST /_bulk through a transport
//   per item:  2xx ok | 404 on delete ok (already gone) | 409 version conflict ok (a newer write
//              is there) | 429, 5xx, (es_)rejected_execution_exception, cluster_block_exception:
//              retried, those items only, exponential backoff with full jitter, until the deadline
//              | 401, 403, security_exception, index_not_found_exception, index_closed_exception
//              (the cluster's set-up, not the record): reported as failed | anything else: dead letter
//   per request: 429, 5xx, no answer: retried as above (waiting at least a Retry-After) | 413:
//              split in halves (one action alone: a dead letter, written without the raw record,
//              but with its Keys, if that is too large as well) | any other status: its records
//              reported as failed
//   dead letters go to "<index>-dlq" with the raw record, the error and the time; if that fails
//   too, or dead letters are off, the record is reported as failed. So is every record whose
//   retries were still failing at the deadline, and every record of a composite-key table whose
//   key schema the resolver (DescribeTable) could not give in this batch.
//
// A batch's bodies are POSTed by a thread of their own while the next body is written (the first
// body is cut small so OpenSearch starts early). The engine itself is not thread-safe: one engine per
// worker (a Lambda container processes one batch at a time).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "adapters/raw_json.hpp"
#include "bulk.hpp"
#include "config.hpp"
#include "document_id.hpp"
#include "detail/json_copy.hpp"
#include "detail/json_tape.hpp"
#include "detail/utc_time.hpp"
#include "detail/writer.hpp"
#include "error.hpp"
#include "http.hpp"
#include "index_name.hpp"

DDB2OS_BEGIN_NAMESPACE

struct retry_policy {
    std::chrono::milliseconds base{50};   // the first retry waits up to this
    std::chrono::milliseconds cap{5000};  // no wait is longer than this
};

// The target of the engine's `_bulk` requests. filter_path keeps of each response only what the
// engine reads (errors, and each item's operation, status and error): about 25 bytes an item instead
// of about 200, which OpenSearch need not write (nor compress), nor the network carry, nor the
// client read. OpenSearch never filters an error response. refresh: "" or true, false, wait_for.
inline std::string bulk_request_target(std::string_view refresh = {}) {
    std::string t = "/_bulk?filter_path=errors,items.*.status,items.*.error";
    if (!refresh.empty()) t.append("&refresh=").append(refresh);
    return t;
}

namespace detail {
// A Retry-After header's delta-seconds (RFC 9110 10.2.3), in milliseconds; -1 when absent or not
// a number of seconds (the HTTP-date form is not read: the backoff applies). Saturates at a day,
// which is past any deadline.
inline std::int64_t retry_after_ms(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) return -1;
    std::int64_t s = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return -1;
        s = std::min<std::int64_t>(s * 10 + (c - '0'), 86400);
    }
    return s * 1000;
}

// The engine's bulk defaults: each batch's first body is cut at 256 KiB, so that OpenSearch indexes
// it while the rest is written (bulk.first_max_bytes = 0: bodies are cut at max_bytes only).
inline bulk_options engine_bulk_defaults() {
    bulk_options b;
    b.first_max_bytes = 256 * 1024;
    return b;
}
}  // namespace detail

struct sync_options {
    bulk_options bulk = detail::engine_bulk_defaults();  // index, key schemas, numbers, lists, sizes, TTL deletes
    bool external_versions = true;  // version_type=external_gte from ApproximateCreationDateTime
    std::string refresh;            // "" (OpenSearch's default), "true", "false" or "wait_for"
    // The dead-letter index; {index} stands for the record's index ("ddb2os" when unknown).
    // Empty: no dead letters, such records are reported as failed.
    std::string dlq_index = "{index}-dlq";
    // How long a dead-letter index found or made is taken to exist before it is asked for again
    // (one deleted meanwhile is made again before its next letter, with its mapping). 0: every time.
    std::chrono::milliseconds dlq_recheck = std::chrono::minutes(5);
    retry_policy retry;
    // Key schema of a table missing from bulk.key_schemas (DynamoDB DescribeTable), asked once
    // per table name and engine, within the batch's deadline. Given the table's name and its ARN
    // (from the first record's eventSourceARN, without "/stream/..."): ask by the ARN, which names
    // the table's account, so a stream from another account is not answered with a same-named
    // table of the caller's. Returns false with a reason when it cannot tell.
    std::function<bool(const std::string& table, const std::string& table_arn, key_schema& schema,
                       std::string& reason, http::clock::time_point deadline)>
        resolve_key_schema;
};

namespace detail {
// A dead-letter index pattern with `index` for each {index}. Searched on after what was put in: an
// index name holding "{index}" would make it endless.
inline std::string dlq_index_for(std::string pattern, std::string_view index) {
    for (std::size_t at = 0; (at = pattern.find("{index}", at)) != std::string::npos; at += index.size())
        pattern.replace(at, 7, index);
    return pattern;
}
}  // namespace detail

inline void validate(const sync_options& o) {
    validate(o.bulk);
    if (!(o.refresh.empty() || o.refresh == "true" || o.refresh == "false" || o.refresh == "wait_for"))
        throw error(errc::option_invalid, "refresh must be true, false or wait_for, not \"" + o.refresh + "\"");
    if (!o.dlq_index.empty()) {
        const std::string problem = index_name_problem(detail::dlq_index_for(o.dlq_index, "books"));
        if (!problem.empty())
            throw error(errc::option_invalid, "dead-letter index \"" + o.dlq_index + "\" is invalid: " + problem);
        // Letters written among the documents would be read as documents (and a letter's _id, an
        // eventID, can never be a document's, so nothing would ever replace them).
        const bool index_fixed = !o.bulk.index.empty() && o.bulk.index.find("{table}") == std::string::npos;
        if (o.dlq_index == "{index}" || (index_fixed && detail::dlq_index_for(o.dlq_index, o.bulk.index) == o.bulk.index))
            throw error(errc::option_invalid, "dead-letter index \"" + o.dlq_index + "\" is the data index itself: give the dead letters an index of their own");
    }
    if (o.dlq_recheck.count() < 0) throw error(errc::option_invalid, "dlq_recheck must not be negative");
    // Bounded so that the clock arithmetic (a time found plus the recheck, a wait doubled up to the
    // cap) cannot overflow: milliseconds::max() as "never" would be undefined.
    if (o.dlq_recheck > std::chrono::hours(24 * 365))
        throw error(errc::option_invalid, "dlq_recheck must be at most 365 days");
    if (o.retry.base.count() <= 0 || o.retry.cap < o.retry.base)
        throw error(errc::option_invalid, "retry needs 0 < base <= cap");
    if (o.retry.cap > std::chrono::hours(24)) throw error(errc::option_invalid, "retry's cap must be at most 1 day");
}

struct record_failure {
    std::uint32_t record = 0;
    std::string sequence_number;
    std::string reason;
};

struct sync_report {
    std::size_t records = 0, actions = 0, superseded = 0, skipped_ttl = 0, ttl_deletes = 0;
    std::size_t requests = 0, bytes = 0, retries = 0;
    std::size_t indexed = 0, deleted = 0, version_conflicts = 0;
    std::size_t dead_lettered = 0, failed = 0;
    double milliseconds = 0;
    std::vector<record_failure> failures;  // in stream order

    // What Lambda needs for ReportBatchItemFailures (it retries from the lowest).
    std::vector<std::string> batch_item_failures() const {
        std::vector<std::string> out;
        out.reserve(failures.size());
        for (const auto& f : failures) out.push_back(f.sequence_number);
        return out;
    }

    // One JSON line: a structured log record that is also CloudWatch Embedded Metric Format.
    // Holds counts only: no document bodies, no secrets.
    std::string log_line(std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
        const std::pair<const char*, std::size_t> counts[] = {
            {"Records", records}, {"Actions", actions}, {"Superseded", superseded}, {"SkippedTTL", skipped_ttl},
            {"TTLDeletes", ttl_deletes}, {"Requests", requests}, {"Bytes", bytes}, {"Retries", retries},
            {"Indexed", indexed}, {"Deleted", deleted}, {"VersionConflicts", version_conflicts},
            {"DeadLettered", dead_lettered}, {"Failed", failed}};
        std::string s = "{\"_aws\":{\"Timestamp\":" + std::to_string(ms) +
                        ",\"CloudWatchMetrics\":[{\"Namespace\":\"ddb2os\",\"Dimensions\":[[\"Service\"]],\"Metrics\":[";
        for (const auto& c : counts) s += std::string("{\"Name\":\"") + c.first + "\",\"Unit\":\"" + (c.first == std::string("Bytes") ? "Bytes" : "Count") + "\"},";
        s += "{\"Name\":\"Milliseconds\",\"Unit\":\"Milliseconds\"}]}]},\"Service\":\"ddb2os\",\"message\":\"ddb2os batch\"";
        for (const auto& c : counts) s += std::string(",\"") + c.first + "\":" + std::to_string(c.second);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", milliseconds);
        s += std::string(",\"Milliseconds\":") + buf + "}";
        return s;
    }
};

// Runs nothing around network waits; the Python binding passes a GIL release instead.
struct no_unlock {};

namespace detail {

// Finished bodies from the writing thread to the sending thread, in order. An exception in the
// sender is kept and rethrown to the writer; the bodies after it are then not sent.
class body_queue {
public:
    void push(bulk_body&& b) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            bodies_.push_back(std::move(b));
        }
        ready_.notify_one();
    }
    void close() {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        ready_.notify_one();
    }
    // The sender: f(body) for each body until the queue is closed and empty.
    template <class F>
    void drain(F&& f) {
        for (;;) {
            bulk_body b;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                ready_.wait(lock, [&] { return closed_ || !bodies_.empty(); });
                if (bodies_.empty()) return;
                b = std::move(bodies_.front());
                bodies_.pop_front();
            }
            try {
                f(b);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex_);
                error_ = std::current_exception();
                return;
            }
        }
    }
    void rethrow() {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<bulk_body> bodies_;
    bool closed_ = false;
    std::exception_ptr error_;
};

}  // namespace detail

// DynamoDB DescribeTable through a transport that signs for service "dynamodb": the ordered key
// schema (HASH, then RANGE). `table` is a table's name or its ARN, as DescribeTable's TableName.
inline bool describe_table_key_schema(http::transport& dynamodb, const std::string& table, key_schema& schema,
                                      std::string& reason, http::clock::time_point deadline) {
    http::request req;
    req.method = "POST";
    req.target = "/";
    req.headers = {{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", "DynamoDB_20120810.DescribeTable"}};
    detail::out_buffer body;
    body.put(std::string_view("{\"TableName\":"));
    detail::write_string(body, table);
    body.put('}');
    req.body = std::string(body.view());
    const http::result r = dynamodb.send(req, deadline);
    if (!r) {
        reason = "DescribeTable " + table + ": " + r.message;
        return false;
    }
    if (r.res.status != 200) {
        reason = "DescribeTable " + table + ": HTTP " + std::to_string(r.res.status) + " ";
        detail::append_sanitized_utf8(reason, r.res.body, 300);
        return false;
    }
    try {
        const raw_json_document doc(r.res.body);
        using A = raw_json_adapter;
        A::value t{}, ks{};
        // find() reads an object's members: every value it is given is checked to be one.
        if (A::kind(doc.root()) != value_kind::object || !A::find(doc.root(), "Table", t) ||
            A::kind(t) != value_kind::object || !A::find(t, "KeySchema", ks) || A::kind(ks) != value_kind::array) {
            reason = "DescribeTable " + table + ": no Table.KeySchema in the answer";
            return false;
        }
        std::string hash, range;
        A::each_element(ks, [&](A::value e) {
            A::value name{}, type{};
            if (A::kind(e) == value_kind::object && A::find(e, "AttributeName", name) && A::find(e, "KeyType", type) &&
                A::kind(name) == value_kind::string && A::kind(type) == value_kind::string) {
                std::string n, scratch;
                const string_ref ref = A::string(name);
                n = ref.escaped && detail::unescape_json(ref.text, scratch) ? scratch : std::string(ref.text);
                (A::string(type).text == "HASH" ? hash : range) = n;
            }
            return true;
        });
        if (hash.empty()) {
            reason = "DescribeTable " + table + ": the key schema has no HASH key";
            return false;
        }
        schema = range.empty() ? key_schema{hash} : key_schema{hash, range};
        return true;
    } catch (const error& e) {
        reason = "DescribeTable " + table + ": " + e.what();
        return false;
    }
}

class sync_engine {
public:
    sync_engine(sync_options options, http::transport& opensearch)
        : opt_(std::move(options)), os_(opensearch), rng_(jitter_seed()) {
        validate(opt_);
        opt_.bulk.external_versions = opt_.external_versions;
    }

    const sync_options& options() const noexcept { return opt_; }
    const std::map<std::string, key_schema, std::less<>>& resolved_key_schemas() const noexcept { return resolved_; }

    // A Lambda event read through adapter A. Unlock is constructed around every network wait.
    template <class A, class Unlock = no_unlock>
    sync_report process(typename A::value event, http::clock::time_point deadline) {
        const auto started = http::clock::now();
        sync_report rep;
        std::vector<typename A::value> records;
        typename A::value list{};
        if (A::kind(event) == value_kind::array) list = event;
        else if (A::kind(event) != value_kind::object || !A::find(event, "Records", list) || A::kind(list) != value_kind::array)
            throw error(errc::event_not_object, "the event must be an object with a \"Records\" array (or an array of records)");
        A::each_element(list, [&](typename A::value r) {
            records.push_back(r);
            return true;
        });
        resolve_schemas<A, Unlock>(records, deadline);

        // Pipelined: a sender thread POSTs each body while this thread writes the next (the first
        // body is cut small, so OpenSearch starts indexing early). The sender never touches the
        // input (it may be Python objects), only finished bodies and the records' sequence numbers.
        const bulk_options bulk_opt = effective_bulk_options();
        detail::bulk_builder<A> builder(bulk_opt, 0);
        builder.prepare(event);
        // Until the sender is joined, only it touches rep, sent_dead and failed.
        std::vector<dead_letter> sent_dead;
        std::vector<record_failure> failed;
        detail::body_queue queue;
        const std::string target = bulk_request_target(opt_.refresh);
        {
            std::thread sender;
            struct join_at_exit {  // also when writing a body throws
                detail::body_queue& queue;
                std::thread& sender;
                ~join_at_exit() {
                    queue.close();
                    if (!sender.joinable()) return;
                    Unlock unlocked;
                    (void)unlocked;
                    sender.join();
                }
            } joiner{queue, sender};
            bulk_body b;
            bool no_thread = false;  // none to be had (a process at its thread limit): sent from here
            while (builder.next_body(b)) {
                queue.push(std::move(b));
                if (!sender.joinable() && !no_thread) {
                    try {
                        sender = std::thread([&] {
                            queue.drain([&](bulk_body& body) {
                                send_body<no_unlock>(target, body, builder.result(), rep, sent_dead, failed, deadline);
                            });
                        });
                    } catch (const std::system_error&) {
                        no_thread = true;
                    }
                }
            }
            if (no_thread) {
                queue.close();
                queue.drain([&](bulk_body& body) {
                    send_body<Unlock>(target, body, builder.result(), rep, sent_dead, failed, deadline);
                });
            }
        }
        queue.rethrow();
        bulk_result bulk = builder.finish();
        rep.records = records.size();
        rep.actions = bulk.actions;
        rep.superseded = bulk.superseded;
        rep.skipped_ttl = bulk.skipped_ttl;
        rep.ttl_deletes = bulk.ttl_deletes;

        std::vector<dead_letter> dead;
        for (const auto& e : bulk.errors) {
            const auto r = static_cast<std::uint32_t>(e.record);
            std::string_view unresolved;
            if (e.code == errc::key_no_schema && unresolved_reason<A>(records[r], unresolved)) {
                // Not the record's fault: the key schema could not be asked for (a throttled or
                // refused DescribeTable, no endpoint). Reported, so Lambda retries it, not moved
                // past in the dead-letter index.
                failed.push_back({r, bulk.records[r].sequence_number,
                                  e.path + ": " + e.message + "; " + std::string(unresolved)});
                continue;
            }
            dead.push_back({r, "ddb2os." + e.id(), (e.path.empty() ? "" : e.path + ": ") + e.message, 0});
        }
        dead.insert(dead.end(), std::make_move_iterator(sent_dead.begin()), std::make_move_iterator(sent_dead.end()));
        dead_letters<A, Unlock>(records, bulk, dead, rep, failed, deadline);

        std::sort(failed.begin(), failed.end(), [](const record_failure& a, const record_failure& b) { return a.record < b.record; });
        rep.failures = std::move(failed);
        rep.failed = rep.failures.size();
        rep.milliseconds = std::chrono::duration<double, std::milli>(http::clock::now() - started).count();
        return rep;
    }

    // The raw bytes of a Lambda event.
    sync_report process(std::string_view event_json, http::clock::time_point deadline) {
        const raw_json_document doc(event_json);
        return process<raw_json_adapter>(doc.root(), deadline);
    }

private:
    struct dead_letter {
        std::uint32_t record;
        std::string type, reason;
        long status;
    };

    sync_options opt_;
    http::transport& os_;
    std::mt19937_64 rng_;
    // random_device throws where there is no entropy source (a sandbox without getrandom or
    // /dev/urandom): the clock then seeds the retries' jitter, all it is used for.
    static std::uint64_t jitter_seed() noexcept {
        try {
            return std::random_device{}();
        } catch (...) {
            return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        }
    }
    std::map<std::string, key_schema, std::less<>> resolved_;
    // The dead-letter indices created (or found) by create_dlq, and when.
    std::vector<std::pair<std::string, http::clock::time_point>> dlq_ready_;
    // This batch's tables whose key schema the resolver could not give, and why.
    std::map<std::string, std::string, std::less<>> unresolved_;

    bulk_options effective_bulk_options() const {
        bulk_options b = opt_.bulk;
        for (const auto& [table, schema] : resolved_) b.key_schemas.emplace(table, schema);
        return b;
    }

    // A record's eventSourceARN ("" when none); a view into the input or `scratch`. Decoded as
    // bulk.hpp decodes it: JSON may write the ARN's slashes as "\/".
    template <class A>
    static std::string_view arn_of(typename A::value r, std::string& scratch) {
        typename A::value arn{};
        if (A::kind(r) != value_kind::object || !A::find(r, "eventSourceARN", arn) || A::kind(arn) != value_kind::string)
            return {};
        const string_ref text = A::string(arn);
        if (!text.escaped) return text.text;
        return detail::unescape_json(text.text, scratch) ? std::string_view(scratch) : std::string_view{};
    }
    // The table a record's eventSourceARN names ("" when none).
    template <class A>
    static std::string_view table_of(typename A::value r, std::string& scratch) {
        return table_from_arn(arn_of<A>(r, scratch));
    }

    template <class A>
    bool unresolved_reason(typename A::value r, std::string_view& reason) const {
        if (unresolved_.empty()) return false;
        std::string scratch;
        const auto it = unresolved_.find(table_of<A>(r, scratch));
        if (it == unresolved_.end()) return false;
        reason = it->second;
        return true;
    }

    template <class A>
    static bool composite_keys(typename A::value r) {
        typename A::value d{}, keys{};
        return A::kind(r) == value_kind::object && A::find(r, "dynamodb", d) && A::kind(d) == value_kind::object &&
               A::find(d, "Keys", keys) && A::kind(keys) == value_kind::object && A::size(keys) > 1;
    }

    // Whether a record is DynamoDB's by its eventSource (none: read as DynamoDB's). Another source's
    // record makes prepare() refuse the event; its table is not asked for first.
    template <class A>
    static bool from_dynamodb(typename A::value r, std::string& scratch) {
        typename A::value v{};
        return !A::find(r, "eventSource", v) || detail::dynamodb_source<A>(v, scratch);
    }

    template <class A, class Unlock>
    void resolve_schemas(const std::vector<typename A::value>& records, http::clock::time_point deadline) {
        unresolved_.clear();
        if (!opt_.resolve_key_schema) return;
        std::string last, scratch, source_scratch;
        for (const auto& r : records) {
            // A record whose Keys hold one attribute needs no key schema: asking for its table anyway
            // cost every batch a DescribeTable (or a connect timeout) where it could not be answered.
            if (!composite_keys<A>(r)) continue;
            const std::string_view arn = arn_of<A>(r, scratch);
            const std::string table(table_from_arn(arn));
            if (table.empty() || table == last) continue;
            last = table;
            if (opt_.bulk.key_schemas.count(table) != 0 || resolved_.count(table) != 0 || unresolved_.count(table) != 0)
                continue;
            if (!from_dynamodb<A>(r, source_scratch)) {  // not `scratch`: `arn` may view it
                last.clear();  // the table may be asked for a DynamoDB record of it
                continue;
            }
            key_schema schema;
            std::string reason;
            bool ok;
            // Copied before Unlock: `arn` may view the host's input (the Python module's str, the GIL
            // then released), which another thread could free meanwhile.
            const std::string table_arn(table_arn_from_arn(arn));
            {
                Unlock unlocked;
                (void)unlocked;
                ok = opt_.resolve_key_schema(table, table_arn, schema, reason, deadline);
            }
            if (ok) {
                const std::string problem = key_schema_problem(schema);
                if (problem.empty()) {
                    resolved_[table] = std::move(schema);
                    continue;
                }
                // Kept, a schema that cannot be used would make every later batch throw.
                reason = "the key schema given for table '" + table + "' " + problem;
            }
            // Unresolved: records of a composite-key table then fail as key.no_schema, not a guess,
            // and are reported (asked again in the next batch).
            unresolved_[table] = reason.empty() ? "the key schema could not be asked for" : std::move(reason);
        }
    }

    // Full jitter: a random wait in [0, min(cap, base * 2^attempt)].
    std::chrono::milliseconds backoff(unsigned attempt) {
        const std::int64_t base = opt_.retry.base.count(), cap = opt_.retry.cap.count();
        std::int64_t ceiling = base;
        for (unsigned i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;
        ceiling = std::min(ceiling, cap);
        return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, ceiling)(rng_));
    }

    // fail: reported to Lambda, neither retried here nor dead-lettered (the cluster's set-up, not the record).
    enum class item_state : unsigned char { ok, retry, dead, fail };
    struct item_outcome {
        item_state state = item_state::retry;
        std::string type, reason;
        long status = 0;
    };

    // Reads a _bulk response: one outcome per sent action, or false if the answer is unusable.
    // deletes: whether each sent action is a delete (else an index); the counts follow what was sent,
    // and an answer whose items name other operations is unusable.
    static bool read_items(const std::string& body, const std::vector<char>& deletes, std::vector<item_outcome>& out,
                           std::size_t& conflicts, std::size_t& indexed, std::size_t& deleted) {
        const std::size_t expected = deletes.size();
        out.assign(expected, item_outcome{});
        // Fast path: "errors":false near the top means every item succeeded, if there is one an action.
        const std::size_t e = body.find("\"errors\":");
        if (e != std::string::npos && e < 200 && body.compare(e + 9, 5, "false") == 0 && all_answered(body, deletes)) {
            for (auto& o : out) o.state = item_state::ok;
            const auto d = static_cast<std::size_t>(std::count(deletes.begin(), deletes.end(), char{1}));
            deleted += d;
            indexed += expected - d;
            return true;
        }
        try {
            const raw_json_document doc(body);
            using A = raw_json_adapter;
            A::value items{};
            // find() and each_member() read an object's members: every value given them is checked to be one.
            if (A::kind(doc.root()) != value_kind::object || !A::find(doc.root(), "items", items) ||
                A::kind(items) != value_kind::array || A::size(items) != expected)
                return false;
            bool shaped = true;  // each item {"<the op sent>": {"status": <number>, ...}}
            std::size_t at = 0;
            A::each_element(items, [&](A::value item) {
                shaped = A::kind(item) == value_kind::object && A::size(item) == 1;
                if (shaped) {
                    string_ref op;
                    A::value inner{}, status{};
                    A::only_member(item, op, inner);
                    shaped = !op.escaped && op.text == (deletes[at] ? "delete" : "index") &&
                             A::kind(inner) == value_kind::object && A::find(inner, "status", status) &&
                             A::kind(status) == value_kind::number;
                }
                ++at;
                return shaped;
            });
            if (!shaped) return false;
            std::size_t i = 0;
            std::string scratch;
            A::each_element(items, [&](A::value item) {
                const bool is_delete = deletes[i] != 0;
                item_outcome& o = out[i++];
                string_ref op;  // the one sent: checked above
                A::value inner{};
                A::only_member(item, op, inner);
                A::value status{}, err{};
                long s = 0;
                if (A::find(inner, "status", status) && A::kind(status) == value_kind::number)
                    s = std::strtol(std::string(A::number_text(status, scratch)).c_str(), nullptr, 10);
                o.status = s;
                if (A::find(inner, "error", err) && A::kind(err) == value_kind::object) {
                    A::value t{}, r{};
                    if (A::find(err, "type", t) && A::kind(t) == value_kind::string) o.type = text_of(A::string(t));
                    if (A::find(err, "reason", r) && A::kind(r) == value_kind::string) o.reason = text_of(A::string(r));
                } else if (A::find(inner, "error", err) && A::kind(err) == value_kind::string) {
                    o.type = text_of(A::string(err));
                }
                if (s >= 200 && s < 300) {
                    o.state = item_state::ok;
                    (is_delete ? deleted : indexed)++;
                } else if (s == 404 && is_delete) {
                    o.state = item_state::ok;  // already gone
                    ++deleted;
                } else if (s == 409 && o.type == "version_conflict_engine_exception") {
                    o.state = item_state::ok;  // a newer write is already there
                    ++conflicts;
                } else if (s == 429 || s >= 500 || o.type == "es_rejected_execution_exception" ||
                           o.type == "rejected_execution_exception" ||  // OpenSearch 2.x names it so
                           o.type == "cluster_block_exception") {  // a write block: lifted, not the record's fault
                    o.state = item_state::retry;
                } else if (s == 401 || s == 403 || o.type == "security_exception" ||
                           o.type == "index_not_found_exception" || o.type == "index_closed_exception") {
                    // No write permission on the index (the security plugin refuses items one by one), or
                    // an index that auto-creation will not make or that is closed: every later record
                    // would fail alike, so they are reported and the shard waits for the fix rather than
                    // filling the dead-letter index while the batch reports success.
                    o.state = item_state::fail;
                } else {
                    o.state = item_state::dead;
                }
                return true;
            });
            return true;
        } catch (const error&) {
            return false;
        }
    }

    static std::string text_of(string_ref s) {
        std::string scratch;
        return std::string(detail::unescape_json_replacing(s.text, s.escaped, scratch));
    }

    // With "errors":false every item is a success, when the answer holds one status an action and as
    // many deletes as were sent (an item missing would pass for a success, and a garbled answer could
    // count more deletes than actions): else the full reading judges it. "status": and {"delete":{
    // cannot be inside a string (their quotes would be escaped).
    static bool all_answered(const std::string& body, const std::vector<char>& deletes) {
        std::size_t d = 0, statuses = 0;
        for (std::size_t at = 0; (at = body.find("\"status\":", at)) != std::string::npos; ++at) ++statuses;
        if (statuses != deletes.size()) return false;
        for (std::size_t at = 0; (at = body.find("{\"delete\":{", at)) != std::string::npos; ++at) ++d;
        return d == static_cast<std::size_t>(std::count(deletes.begin(), deletes.end(), char{1}));
    }

    // target: bulk_request_target(), with refresh for the batch's bodies, without for dead letters.
    template <class Unlock>
    void send_body(const std::string& target, bulk_body& b, const bulk_result& bulk, sync_report& rep,
                   std::vector<dead_letter>& dead, std::vector<record_failure>& failed,
                   http::clock::time_point deadline) {
        std::vector<std::size_t> pending(b.records.size());
        for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
        send_actions<Unlock>(target, b, std::move(pending), true, bulk, rep, dead, failed, deadline);
    }

    // The actions `pending` of b, in order (whole: all of them, so the body itself is sent), retried
    // until each has an outcome or the deadline comes.
    template <class Unlock>
    void send_actions(const std::string& target, bulk_body& b, std::vector<std::size_t> pending, bool whole,
                      const bulk_result& bulk, sync_report& rep, std::vector<dead_letter>& dead,
                      std::vector<record_failure>& failed, http::clock::time_point deadline) {
        std::string last_reason;
        unsigned lasting = 0;  // failures in a row that waiting seldom fixes
        std::int64_t server_wait_ms = -1;  // the last whole-request refusal's Retry-After
        for (unsigned attempt = 0; !pending.empty(); ++attempt) {
            http::request req;
            req.method = "POST";
            req.target = target;
            req.headers = {{"Content-Type", "application/x-ndjson"}};
            // The first attempt borrows the whole body (up to max_bytes: no copy) and gives it back,
            // since retries cut their actions out of it; retries hold only the failed actions.
            const bool borrow = attempt == 0 && whole;
            if (borrow) req.body.swap(b.data);
            else
                for (std::size_t i : pending) req.body.append(b.action(i));
            const std::size_t sent = req.body.size();
            http::result res;
            {
                struct give_back {
                    std::string& from;
                    std::string& to;
                    bool armed;
                    ~give_back() {
                        if (armed) from.swap(to);
                    }
                } back{req.body, b.data, borrow};
                Unlock unlocked;
                (void)unlocked;
                res = os_.send(req, deadline);
            }
            ++rep.requests;
            rep.bytes += sent;
            std::vector<std::size_t> retry;
            server_wait_ms = -1;
            if (res) lasting = 0;
            if (!res) {
                last_reason = "request failed: " + res.message;
                // A certificate that fails verification, no credentials, a request libcurl refuses:
                // tried three times (a third try rules out a passing fault), then reported, rather
                // than retried until the deadline uses up the invocation. A handshake the peer cuts
                // is send_receive (transport/curl.hpp) and retried as any broken connection.
                const bool lasts = res.error == http::error_kind::tls || res.error == http::error_kind::credentials ||
                                   res.error == http::error_kind::other;
                lasting = lasts ? lasting + 1 : 0;
                if (lasting >= 3) {
                    for (std::size_t i : pending)
                        failed.push_back({b.records[i], bulk.records[b.records[i]].sequence_number,
                                          "failed " + std::to_string(lasting) + " times: " + last_reason});
                    return;
                }
                retry = pending;
            } else if (res.res.status == 429 || res.res.status >= 500) {
                last_reason = "HTTP " + std::to_string(res.res.status) + " for the whole request";
                // A proxy or gateway that says when to come back: sooner would be refused again.
                server_wait_ms = detail::retry_after_ms(res.res.header_value("Retry-After"));
                if (server_wait_ms >= 0) last_reason += " (Retry-After: " + std::to_string(server_wait_ms / 1000) + " s)";
                retry = pending;
            } else if (res.res.status == 413) {
                // Larger than the cluster takes (http.max_content_length; 10 MiB on the smallest
                // Amazon OpenSearch Service instances): the same request would fail again at every
                // retry of the batch. Halves go out one after the other, in order; an action that
                // is too large alone is the record's fault: a dead letter.
                if (pending.size() == 1) {
                    dead.push_back({b.records[pending[0]], "request_entity_too_large",
                                    "HTTP 413: a single action (" + std::to_string(sent) +
                                        " bytes) is larger than the cluster accepts in a request",
                                    413});
                    return;
                }
                const auto half = pending.begin() + static_cast<std::ptrdiff_t>(pending.size() / 2);
                std::vector<std::size_t> second(half, pending.end());
                pending.erase(half, pending.end());
                send_actions<Unlock>(target, b, std::move(pending), false, bulk, rep, dead, failed, deadline);
                send_actions<Unlock>(target, b, std::move(second), false, bulk, rep, dead, failed, deadline);
                return;
            } else if (res.res.status != 200) {
                // Auth, a malformed request, a closed index: not something a retry here fixes, and
                // not the record's fault either. Lambda retries the batch.
                std::string reason = "HTTP " + std::to_string(res.res.status) + ": ";
                detail::append_sanitized_utf8(reason, res.res.body, 300);  // a reason is valid UTF-8
                for (std::size_t i : pending)
                    failed.push_back({b.records[i], bulk.records[b.records[i]].sequence_number, reason});
                return;
            } else {
                std::vector<item_outcome> items;
                std::vector<char> deletes(pending.size());
                for (std::size_t j = 0; j < pending.size(); ++j)
                    deletes[j] = b.action(pending[j]).compare(0, 10, "{\"delete\":") == 0;
                if (!read_items(res.res.body, deletes, items, rep.version_conflicts, rep.indexed, rep.deleted)) {
                    last_reason = "an unreadable _bulk response";
                    retry = pending;
                } else {
                    for (std::size_t j = 0; j < pending.size(); ++j) {
                        const std::size_t i = pending[j];
                        if (items[j].state == item_state::retry) {
                            retry.push_back(i);
                            last_reason = "HTTP " + std::to_string(items[j].status) + " " + items[j].type;
                        } else if (items[j].state == item_state::dead) {
                            dead.push_back({b.records[i], items[j].type, items[j].reason, items[j].status});
                        } else if (items[j].state == item_state::fail) {
                            std::string reason = "HTTP " + std::to_string(items[j].status) + " " + items[j].type;
                            if (!items[j].reason.empty()) {
                                reason += ": ";
                                detail::append_sanitized_utf8(reason, items[j].reason, 300);
                            }
                            failed.push_back({b.records[i], bulk.records[b.records[i]].sequence_number, reason});
                        }
                    }
                }
            }
            pending.swap(retry);
            if (pending.empty()) break;
            const auto wait = std::max(backoff(attempt), std::chrono::milliseconds(server_wait_ms));
            if (http::clock::now() + wait >= deadline) {
                const std::string tries = std::to_string(attempt + 1) + (attempt == 0 ? " attempt" : " attempts");
                const std::string reason = std::chrono::milliseconds(server_wait_ms) >= wait && http::clock::now() < deadline
                                               ? "not retried, the answer's Retry-After being past the deadline, after " +
                                                     tries + ": " + last_reason
                                               : "still failing at the deadline after " + tries + ": " + last_reason;
                for (std::size_t i : pending)
                    failed.push_back({b.records[i], bulk.records[b.records[i]].sequence_number, reason});
                return;
            }
            rep.retries += pending.size();
            Unlock unlocked;
            (void)unlocked;
            std::this_thread::sleep_for(wait);
        }
    }

    std::string dlq_name(const std::string& index) const {
        return detail::dlq_index_for(opt_.dlq_index, index.empty() ? std::string_view("ddb2os") : std::string_view(index));
    }

    template <class A, class Unlock>
    void dead_letters(const std::vector<typename A::value>& records, const bulk_result& bulk, std::vector<dead_letter>& dead,
                      sync_report& rep, std::vector<record_failure>& failed, http::clock::time_point deadline) {
        if (dead.empty()) return;
        if (opt_.dlq_index.empty()) {
            for (const auto& d : dead)
                failed.push_back({d.record, bulk.records[d.record].sequence_number, d.type + ": " + d.reason});
            return;
        }
        // A dead-letter index that is the record's own index (a fixed DLQ name equal to a table's
        // index, which the options cannot know of): reported, never written among the documents.
        std::vector<dead_letter> kept;
        for (auto& d : dead) {
            const std::string& index = bulk.records[d.record].index;
            if (dlq_name(index) == index)
                failed.push_back({d.record, bulk.records[d.record].sequence_number,
                                  d.type + ": " + d.reason + " (not dead-lettered: the dead-letter index is the record's own index \"" +
                                      index + "\")"});
            else
                kept.push_back(std::move(d));
        }
        dead = std::move(kept);
        if (dead.empty()) return;
        const std::string now = detail::iso8601_utc(std::chrono::system_clock::now());
        std::vector<dead_letter> dlq_dead;
        std::vector<record_failure> dlq_failed;
        sync_report dlq_rep;
        std::vector<std::string> names;  // each asked for once a batch
        for (const auto& d : dead) {
            std::string name = dlq_name(bulk.records[d.record].index);
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
        }
        // Letters to an index that could not be created with its mapping (no answer, throttled, the
        // cluster's fault) are not sent, since they would create it by dynamic mapping: reported, and
        // written at the batch's retry.
        std::vector<std::pair<std::string, std::string>> unready;  // name, why
        for (const auto& name : names) {
            std::string why;
            if (!create_dlq<Unlock>(name, dlq_rep, deadline, why)) unready.emplace_back(name, std::move(why));
        }
        if (!unready.empty()) {
            std::vector<dead_letter> sendable;
            for (auto& d : dead) {
                const std::string name = dlq_name(bulk.records[d.record].index);
                const auto u = std::find_if(unready.begin(), unready.end(), [&](const auto& n) { return n.first == name; });
                if (u == unready.end())
                    sendable.push_back(std::move(d));
                else
                    failed.push_back({d.record, bulk.records[d.record].sequence_number,
                                      d.type + ": " + d.reason + " (not dead-lettered: the dead-letter index \"" + name +
                                          "\" could not be created: " + u->second + ")"});
            }
            dead = std::move(sendable);
        }
        for (bulk_body& body : letter_bodies<A>(records, bulk, dead, now, false))
            send_body<Unlock>(bulk_request_target(), body, bulk, dlq_rep, dlq_dead, dlq_failed, deadline);
        // A letter the cluster refuses as too large alone (413) holds a record larger than any request
        // it takes: written again without the record (its sequence number and event ID lead back to
        // it), or it would be refused at every retry of the batch and hold up the shard.
        std::vector<const dead_letter*> original_of(bulk.records.size(), nullptr);  // each record's letter
        for (const auto& d : dead) original_of[d.record] = &d;
        std::vector<dead_letter> slim, refused;
        for (auto& d : dlq_dead) {
            if (d.status != 413) {
                refused.push_back(std::move(d));
                continue;
            }
            if (original_of[d.record] != nullptr) slim.push_back(*original_of[d.record]);
        }
        dlq_dead = std::move(refused);
        for (bulk_body& body : letter_bodies<A>(records, bulk, slim, now, true))
            send_body<Unlock>(bulk_request_target(), body, bulk, dlq_rep, dlq_dead, dlq_failed, deadline);
        rep.requests += dlq_rep.requests;
        rep.bytes += dlq_rep.bytes;
        rep.retries += dlq_rep.retries;
        std::vector<bool> lost(bulk.records.size(), false);
        for (auto& f : dlq_failed) {  // said as the dead letter's, with the record's own error
            lost[f.record] = true;
            if (const dead_letter* original = original_of[f.record])
                f.reason = "dead letter not written (the record's error: " + original->type + ": " + original->reason +
                           "): " + f.reason;
            failed.push_back(std::move(f));
        }
        for (const auto& d : dlq_dead) {
            lost[d.record] = true;
            failed.push_back({d.record, bulk.records[d.record].sequence_number,
                              "dead letter refused: " + d.type + ": " + d.reason});
        }
        for (const auto& d : dead)
            if (!lost[d.record]) ++rep.dead_lettered;
    }

    // Creates a dead-letter index before its first letter, with date detection off. Made by a
    // letter's dynamic mapping, a field whose first value looks like a date (the id "2024-05-01" of a
    // date-keyed table) would be mapped as a date, and every later letter whose id is none refused,
    // at every retry: the shard would stop. Its "time" is a date. An index that exists is left as it
    // is, and asked for again after dlq_recheck (5 minutes by default). True: the letters may be
    // sent: the index is there, or creating it is not allowed (401, 403: the letters' request may
    // still auto-create it, as before) or refused for good (another 4xx or 501: the letters will say
    // why), or its name has other bytes than [a-z0-9._-] (which a URL path would need encoded). False, with `why`: no answer, 429, another 5xx or an answer no
    // index creation gives (a redirect): asked again at the retry.
    // Given at most 10 s and half the time left: a cluster that cannot start the index's shards
    // holds its answer for 30 s, and the letters need the rest.
    template <class Unlock>
    bool create_dlq(const std::string& name, sync_report& rep, http::clock::time_point deadline, std::string& why) {
        const http::clock::time_point now = http::clock::now();
        const auto known = std::find_if(dlq_ready_.begin(), dlq_ready_.end(), [&](const auto& r) { return r.first == name; });
        if (known != dlq_ready_.end() && now < known->second + opt_.dlq_recheck) return true;
        for (char c : name)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return true;
        if (now >= deadline) return true;  // the letters' own request says so
        http::request req;
        req.method = "PUT";
        req.target = "/" + name;
        req.headers = {{"Content-Type", "application/json"}};
        req.body = R"({"mappings":{"date_detection":false,"properties":{"time":{"type":"date"}}}})";
        http::result res;
        {
            Unlock unlocked;
            (void)unlocked;
            res = os_.send(req, now + std::min<http::clock::duration>(std::chrono::seconds(10), (deadline - now) / 2));
        }
        ++rep.requests;
        const long status = res ? res.res.status : 0;
        if (status == 200 || (status == 400 && res.res.body.find("resource_already_exists_exception") != std::string::npos)) {
            if (known != dlq_ready_.end()) known->second = now;
            else dlq_ready_.emplace_back(name, now);
            return true;
        }
        // Refused for good (another 4xx, 501: a proxy that passes no PUT): the letters are sent.
        if ((status >= 400 && status < 500 && status != 429) || status == 501) return true;
        why = !res ? res.message : "HTTP " + std::to_string(status);
        return false;
    }

    // Dead letters, idempotent (the _id is the record's eventID, else its sequence number, else for
    // a record with neither, which no DynamoDB stream sends, the SHA-256 of the record), in bodies
    // cut as the batch's are (max_bytes, max_actions): each holds its whole raw record (unless
    // `without_record`), so they are larger than the actions they stand for.
    template <class A>
    std::vector<bulk_body> letter_bodies(const std::vector<typename A::value>& records, const bulk_result& bulk,
                                         const std::vector<dead_letter>& dead, const std::string& now,
                                         bool without_record) const {
        std::vector<bulk_body> bodies;
        if (dead.empty()) return bodies;
        bodies.emplace_back();
        detail::out_buffer out;
        for (const auto& d : dead) {
            const record_info& info = bulk.records[d.record];
            // The record as it arrived, as a string: the dead-letter index must never have mapping
            // conflicts of its own.
            detail::out_buffer raw;
            detail::write_record_copy<A>(raw, records[d.record], opt_.bulk.include_attributes,
                                         opt_.bulk.exclude_attributes);
            const std::size_t start = out.size();
            out.put(std::string_view("{\"index\":{\"_index\":"));
            detail::write_string(out, dlq_name(info.index));
            out.put(std::string_view(",\"_id\":"));
            if (!info.event_id.empty()) detail::write_string(out, info.event_id);
            else if (!info.sequence_number.empty()) detail::write_string(out, info.sequence_number);
            else detail::write_string(out, detail::hashed_id(raw.view()));
            auto field = [&](std::string_view prefix, std::string_view value) {
                out.put(prefix);
                detail::write_string(out, value);
            };
            field("}}\n{\"sequence_number\":", info.sequence_number);
            field(",\"event_id\":", info.event_id);
            field(",\"index\":", info.index);
            field(",\"id\":", info.id);
            field(",\"error\":{\"type\":", d.type);
            field(",\"reason\":", d.reason);
            out.put(std::string_view(",\"status\":"));
            out.put(std::to_string(d.status));
            field("},\"time\":", now);
            if (without_record) {
                field(",\"record_omitted\":", "the record (" + std::to_string(raw.size()) +
                                                    " bytes) is larger than the cluster accepts in a request");
                // Its Keys (at most about 3 KB), so that the item can still be read from the table
                // (GetItem) and re-driven; a string, as the record is.
                typename A::value ddb{}, keys{};
                if (A::kind(records[d.record]) == value_kind::object && A::find(records[d.record], "dynamodb", ddb) &&
                    A::kind(ddb) == value_kind::object && A::find(ddb, "Keys", keys)) {
                    detail::out_buffer k;
                    detail::write_json_copy<A>(k, keys);
                    field(",\"keys\":", k.view());
                }
            } else
                field(",\"record\":", raw.view());
            out.put(std::string_view("}\n"));
            std::size_t at = start;
            if (!bodies.back().records.empty() &&
                (bodies.back().records.size() == opt_.bulk.max_actions || out.size() > opt_.bulk.max_bytes)) {
                const std::string letter(out.view(start));  // opens the next body
                out.truncate(start);
                bodies.back().data = out.take();
                out = detail::out_buffer();
                out.put(letter);
                bodies.emplace_back();
                at = 0;
            }
            bodies.back().offsets.push_back(static_cast<std::uint32_t>(at));
            bodies.back().records.push_back(d.record);
        }
        bodies.back().data = out.take();
        return bodies;
    }
};

DDB2OS_END_NAMESPACE
