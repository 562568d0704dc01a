// ddb2os._core: the C++ core as a Python module (pybind11). Python objects are read in place
// through python_adapter; raw JSON bytes take the tape path with the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <chrono>

#include <ddb2os/adapters/python.hpp>
#include <ddb2os/ddb2os.hpp>
#include <ddb2os/credentials_http.hpp>
#include <ddb2os/sigv4.hpp>
#include <ddb2os/sync.hpp>
#include <ddb2os/transport/curl.hpp>

namespace py = pybind11;
using ddb2os::errc;
using ddb2os::python_adapter;

namespace {

// The C++ value of `self` as a T, or null when it has none: an object made by T.__new__(T) without
// __init__, for which pybind11 would hand a method uninitialized memory. Looked up by T's own entry
// (a Python class with two bound bases holds two values). `self` must be a T by its real type.
template <class T>
const py::detail::type_info* bound_type() {
    static const py::detail::type_info* const info = py::detail::get_type_info(typeid(T));
    return info;
}
template <class T>
T* value_of(PyObject* self) {
    const py::detail::value_and_holder vh = reinterpret_cast<py::detail::instance*>(self)->get_value_and_holder(bound_type<T>(), false);
    return vh.inst != nullptr && vh.value_ptr<T>() != nullptr && vh.holder_constructed() ? vh.value_ptr<T>() : nullptr;
}

// A failure with a path, carried to the binding's edge and raised as ddb2os.<Class>Error.
struct path_failure {
    std::string id, path, message;
};

[[noreturn]] void raise(const std::string& id, const std::string& path, const std::string& message) {
    py::object make = py::module_::import("ddb2os._errors").attr("_make");
    py::object exc = make(id, path, message);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    throw py::error_already_set();
}

template <class F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const path_failure& e) {
        raise(e.id, e.path, e.message);
    } catch (const ddb2os::error& e) {
        raise(e.id(), e.path(), e.message());
    }
}

py::object steal(PyObject* o) {
    if (o == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(o);
}

// A str's UTF-8. One that has none (a lone surrogate) is refused by what it is (`what`, with the
// error id `id`), never quoted: Python's UnicodeEncodeError carries the whole value in its args and
// repr (an event, a header holding a secret).
std::string_view utf8(PyObject* s, const char* what, const char* id) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == nullptr) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) throw py::error_already_set();  // no memory
        PyErr_Clear();
        throw ddb2os::error(id, std::string(what) + " is not valid Unicode (it holds a lone surrogate)");
    }
    return {p, static_cast<std::size_t>(n)};
}

// Raw JSON given as bytes or str: a view of its immutable buffer, readable without the GIL.
bool raw_json_view(PyObject* e, std::string_view& raw) {
    if (PyBytes_Check(e)) raw = std::string_view(PyBytes_AS_STRING(e), static_cast<std::size_t>(PyBytes_GET_SIZE(e)));
    else if (PyUnicode_Check(e)) raw = utf8(e, "the event (a str of JSON)", "json.syntax");
    else return false;
    return true;
}

// Builds Python values as boto3's TypeDeserializer does (N -> Decimal, B -> bytes where boto3 gives Binary,
// sets -> set), with ddb2os's checks and error paths.
class py_unmarshaller {
public:
    py::object image(PyObject* img) {
        if (!PyDict_Check(img))
            fail(errc::attr_not_object, "an item image must be a mapping of attributes, not " +
                                            std::string(Py_TYPE(img)->tp_name));
        return map(img, 0);
    }
    py::object value(PyObject* v) { return attribute(v, 0); }

private:
    ddb2os::detail::path_tracker path_;
    std::string message_, scratch_;
    py::object decimal_;

    [[noreturn]] void fail(errc code, std::string message) {
        throw path_failure{std::string(ddb2os::error_id(code)), path_.render(), std::move(message)};
    }

    py::object attribute(PyObject* v, int depth) {
        ddb2os::ddb_type t;
        PyObject* p = nullptr;
        const errc e = ddb2os::detail::classify<python_adapter>(v, t, p, message_, scratch_);
        if (e != errc::ok) fail(e, message_);
        // Held while it is read: making objects can run Python code (the garbage collector's
        // finalizers and callbacks), which could change the input and free it.
        const py::object held = py::reinterpret_borrow<py::object>(p);
        path_.push_type(t);
        py::object r = payload(t, p, depth);
        path_.pop();
        return r;
    }

    // An exact str: a str subclass's __hash__ (Python code, which could change the input while
    // it is read) never runs when the value goes into a dict or set.
    py::object str(PyObject* p) {
        if (PyUnicode_AsUTF8AndSize(p, nullptr) == nullptr) {
            PyErr_Clear();
            fail(errc::utf8_invalid, "string is not valid Unicode (a lone surrogate)");
        }
        return PyUnicode_CheckExact(p) ? py::reinterpret_borrow<py::object>(p) : steal(PyUnicode_FromObject(p));
    }

    py::object number(PyObject* p) {
        std::string_view text;
        if (ddb2os::detail::string_text<python_adapter>(p, scratch_, text, message_) != errc::ok)
            fail(errc::number_invalid, "a number must be ASCII text: " + message_);
        ddb2os::detail::number_parts parts;
        const auto st = ddb2os::detail::parse_number(text, parts);
        if (st != ddb2os::detail::number_status::ok)
            fail(st == ddb2os::detail::number_status::invalid ? errc::number_invalid : errc::number_out_of_range,
                 ddb2os::detail::number_message(st, text));
        if (!decimal_) decimal_ = py::module_::import("decimal").attr("Decimal");
        return steal(PyObject_CallOneArg(decimal_.ptr(), p));
    }

    py::object bytes(PyObject* p) {
        if (PyBytes_Check(p)) return py::reinterpret_borrow<py::object>(p);
        if (PyByteArray_Check(p)) return steal(PyBytes_FromObject(p));
        const ddb2os::string_ref s = python_adapter::string(p);
        const std::string_view problem = ddb2os::detail::base64_problem(s.text);
        if (!problem.empty()) {
            std::string m;
            ddb2os::detail::quote_for_message(m, s.text);
            fail(errc::base64_invalid, m + " is not valid base64: " + std::string(problem));
        }
        const std::string raw = ddb2os::detail::base64_decode(s.text);
        return steal(PyBytes_FromStringAndSize(raw.data(), static_cast<Py_ssize_t>(raw.size())));
    }

    py::object map(PyObject* m, int depth) {
        py::object d = steal(PyDict_New());
        Py_ssize_t pos = 0;
        PyObject *k = nullptr, *v = nullptr;
        while (PyDict_Next(m, &pos, &k, &v)) {
            const py::object key = py::reinterpret_borrow<py::object>(k), held = py::reinterpret_borrow<py::object>(v);
            if (!PyUnicode_Check(k)) fail(errc::attr_not_object, "attribute names must be strings");
            path_.push_name(python_adapter::string(k));  // a view into `key`'s text
            const py::object name = str(k);
            py::object val = attribute(v, depth);
            if (PyDict_SetItem(d.ptr(), name.ptr(), val.ptr()) != 0) throw py::error_already_set();
            path_.pop();
        }
        return d;
    }

    py::object payload(ddb2os::ddb_type t, PyObject* p, int depth) {
        using ddb2os::ddb_type;
        switch (t) {
            case ddb_type::S: return str(p);
            case ddb_type::N: return number(p);
            case ddb_type::B: return bytes(p);
            case ddb_type::BOOL: return py::bool_(p == Py_True);
            case ddb_type::NULL_: return py::none();
            case ddb_type::M:
                if (depth + 2 > ddb2os::max_nesting) too_deep();
                return map(p, depth + 1);
            case ddb_type::L: {
                if (depth + 2 > ddb2os::max_nesting) too_deep();
                // Appended, not sized from the input first: making values can run Python code (the
                // garbage collector's callbacks), which could resize the input list meanwhile.
                py::object list = steal(PyList_New(0));
                std::size_t i = 0;
                python_adapter::each_element(p, [&](PyObject* e) {
                    path_.push_index(i);
                    const py::object item = attribute(e, depth + 1);
                    if (PyList_Append(list.ptr(), item.ptr()) != 0) throw py::error_already_set();
                    path_.pop();
                    ++i;
                    return true;
                });
                return list;
            }
            case ddb_type::SS:
            case ddb_type::NS:
            case ddb_type::BS: {
                if (python_adapter::size(p) == 0)
                    fail(errc::set_empty, std::string(ddb2os::type_name(t)) +
                                              " is an empty set; a DynamoDB set holds at least one element");
                py::object set = steal(PySet_New(nullptr));
                std::size_t i = 0;
                python_adapter::each_element(p, [&](PyObject* e) {
                    path_.push_index(i++);
                    const bool is_str = PyUnicode_Check(e);
                    if (!(is_str || (t == ddb_type::BS && (PyBytes_Check(e) || PyByteArray_Check(e)))))
                        fail(errc::attr_wrong_json_type, std::string(ddb2os::type_name(t)) +
                                                             " elements must be strings, not " +
                                                             ddb2os::detail::a_kind_of<python_adapter>(e));  // as to_json says it
                    py::object item = t == ddb_type::SS ? str(e) : t == ddb_type::NS ? number(e) : bytes(e);
                    if (PySet_Add(set.ptr(), item.ptr()) != 0) throw py::error_already_set();
                    path_.pop();
                    return true;
                });
                return set;
            }
            default: break;
        }
        fail(errc::attr_unknown_type, "unknown type");
    }

    [[noreturn]] void too_deep() {
        fail(errc::nesting_too_deep,
             "nesting is deeper than DynamoDB's " + std::to_string(ddb2os::max_nesting) + " levels");
    }
};

// Arguments and options read here, not by pybind11: its error for an argument of the wrong type
// quotes every argument of the call (a whole event, a secret key), and is a TypeError, not one of
// ddb2os's errors. `id`: the error's (sigv4.bad_argument for signing, option.invalid otherwise).
// A str that cannot be UTF-8 (a lone surrogate) is refused by name: Python's UnicodeEncodeError
// would carry the whole value in its args and repr (a secret key, a password).
std::string str_arg(py::handle h, const char* name, const char* id) {
    if (!PyUnicode_Check(h.ptr()))
        throw ddb2os::error(id, std::string(name) + " must be a str, not " + Py_TYPE(h.ptr())->tp_name);
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(h.ptr(), &n);
    if (p == nullptr) {
        PyErr_Clear();
        throw ddb2os::error(id, std::string(name) + " is not valid Unicode (it holds a lone surrogate)");
    }
    return std::string(p, static_cast<std::size_t>(n));
}
// An environment variable's name or value as the process was given it: os.environ decodes bytes
// that are not UTF-8 as lone surrogates (surrogateescape), which this encodes back. Anything else that
// cannot be encoded is refused by the variable's position, never quoted (a value can be a secret).
std::string env_text(py::handle h, const char* what) {
    if (!PyUnicode_Check(h.ptr()))
        throw ddb2os::error(errc::option_invalid, std::string("an environment variable's ") + what +
                                                      " must be a str, not " + Py_TYPE(h.ptr())->tp_name);
    PyObject* b = PyUnicode_EncodeFSDefault(h.ptr());
    if (b == nullptr) {
        PyErr_Clear();
        throw ddb2os::error(errc::option_invalid, std::string("an environment variable's ") + what +
                                                      " cannot be encoded as the file system encoding");
    }
    std::string r(PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b)));
    Py_DECREF(b);
    return r;
}
std::string option_str(py::handle h, const char* name) { return str_arg(h, name, "option.invalid"); }
// An integer (an int, or anything with __index__, as numpy's), never a bool or a float.
std::size_t option_size(py::handle h, const char* name) {
    const py::object i = PyBool_Check(h.ptr()) ? py::object() : py::reinterpret_steal<py::object>(PyNumber_Index(h.ptr()));
    if (!i) {
        PyErr_Clear();
        throw ddb2os::error(errc::option_invalid, std::string(name) + " must be an int, not " + Py_TYPE(h.ptr())->tp_name);
    }
    const unsigned long long v = PyLong_AsUnsignedLongLong(i.ptr());
    if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        throw ddb2os::error(errc::option_invalid, std::string(name) + " must be from 0 to 2**64-1, not " +
                                                      py::repr(i).cast<std::string>());
    }
    return static_cast<std::size_t>(v);
}
// A bool, or the int 0 or 1.
bool option_bool(py::handle h, const char* name) {
    if (!PyBool_Check(h.ptr())) {
        const long v = PyLong_Check(h.ptr()) ? PyLong_AsLong(h.ptr()) : -1;
        PyErr_Clear();
        if (v != 0 && v != 1)
            throw ddb2os::error(errc::option_invalid, std::string(name) + " must be True or False, not " +
                                                          (PyLong_Check(h.ptr()) ? py::repr(h).cast<std::string>()
                                                                                 : std::string(Py_TYPE(h.ptr())->tp_name)));
        return v == 1;
    }
    return h.ptr() == Py_True;
}
// A key schema: attribute names in key order (partition, sort) from a list, tuple or any other
// sequence, or their text "partitionKey,sortKey". A set, a mapping or an iterator is refused: a
// set has no order (nor an iterator over one), so the _id's parts would change from process to
// process.
// Attribute names: a sequence of str, read from its own copy (a list could change while read). A
// str alone, bytes, a mapping, a set or an iterator is refused: one name, or no order to keep.
// `ordered`: the order matters (a key schema), and the message says so.
std::vector<std::string> names_of(py::handle names, const std::string& what, bool ordered) {
    PyObject* o = names.ptr();
    if (PyUnicode_Check(o) || !PySequence_Check(o) || PyBytes_Check(o) || PyByteArray_Check(o) ||
        PyObject_HasAttrString(o, "keys"))
        throw ddb2os::error(errc::option_invalid, what + " must be a sequence (a list, a tuple) of attribute names" +
                                                      (ordered ? ", in order" : "") + ", not " + Py_TYPE(o)->tp_name);
    std::vector<std::string> out;
    const py::object items = steal(PySequence_Tuple(o));
    for (py::handle name : items) {
        if (!PyUnicode_Check(name.ptr()))
            throw ddb2os::error(errc::option_invalid, what + " must hold str attribute names, not " + Py_TYPE(name.ptr())->tp_name);
        out.push_back(str_arg(name, what.c_str(), "option.invalid"));
    }
    return out;
}

ddb2os::key_schema key_schema_of(const std::string& table, py::handle names) {
    ddb2os::key_schema schema;
    PyObject* o = names.ptr();
    const std::string what = table.empty() ? "key_schema" : "the key schema of table '" + table + "'";
    // "author,bookTitle" as the CLI's --keys reads it, or a sequence of names; checked alike below.
    schema = PyUnicode_Check(o) ? ddb2os::split_key_names(str_arg(o, what.c_str(), "option.invalid")) : names_of(o, what, true);
    // Checked here for every caller (document_id took what bulk_bodies refused); empty is document_id's
    // "no schema" (bulk_bodies refuses it for a table).
    const std::string problem = schema.empty() ? std::string() : ddb2os::key_schema_problem(schema);
    if (!problem.empty()) throw ddb2os::error(errc::option_invalid, what + " " + problem);
    return schema;
}

ddb2os::number_mode number_mode_of(const std::string& s) {
    ddb2os::number_mode m;
    if (!ddb2os::parse_number_mode(s, m))
        throw ddb2os::error(errc::option_invalid, "numbers must be 'exact', 'string' or 'double', not '" + s + "'");
    return m;
}
ddb2os::list_policy list_policy_of(const std::string& s) {
    ddb2os::list_policy p;
    if (!ddb2os::parse_list_policy(s, p))
        throw ddb2os::error(errc::option_invalid, "lists must be 'stringify' or 'keep', not '" + s + "'");
    return p;
}

py::bytes to_json(py::handle image, py::handle numbers, py::handle lists) {
    return guarded([&] {
        ddb2os::unmarshal_options opt;
        opt.numbers = number_mode_of(option_str(numbers, "numbers"));
        opt.lists = list_policy_of(option_str(lists, "lists"));
        ddb2os::detail::out_buffer out;
        ddb2os::path_error err;
        if (!ddb2os::write_document<python_adapter>(out, image.ptr(), opt, err)) throw path_failure{std::string(ddb2os::error_id(err.code)), err.path, err.message};
        const std::string_view v = out.view();
        return py::bytes(v.data(), v.size());
    });
}

std::string document_id(py::handle keys, py::handle key_schema) {
    return guarded([&] {
        if (!PyDict_Check(keys.ptr())) throw ddb2os::error(errc::record_bad_field, "keys must be a dict of attribute values");
        const ddb2os::key_schema schema = key_schema_of("", key_schema);
        std::string id;
        ddb2os::path_error err;
        if (!ddb2os::document_id<python_adapter>(keys.ptr(), schema.empty() ? nullptr : &schema, "", id, err))
            throw path_failure{std::string(ddb2os::error_id(err.code)), err.path, err.message};
        return id;
    });
}

// What bulk_bodies returns.
struct bulk_result_py {
    py::list bodies;
    py::list errors;
    std::size_t superseded = 0, actions = 0, skipped_ttl = 0, ttl_deletes = 0;
    std::vector<std::vector<std::uint32_t>> body_records;
    // Every record's, kept whole (one move) and made into strs only when read: copying each
    // sequence number (21+ digits, past std::string's inline size) into a string of its own was a
    // malloc and a free per record, about a tenth of a REMOVE batch's time from a dict.
    std::vector<ddb2os::record_info> records;
};

struct record_error_py {
    std::size_t record;
    std::string sequence_number, event_id, id, path, message;
};

bulk_result_py bulk_bodies(py::handle event, py::handle index, py::handle key_schemas, py::handle numbers,
                           py::handle lists, py::handle max_bytes, py::handle max_actions, py::handle skip_ttl_deletes,
                           py::handle exclude, py::handle include) {
    ddb2os::bulk_result r = guarded([&] {
        ddb2os::bulk_options opt;
        if (!index.is_none()) opt.index = option_str(index, "index");
        if (!key_schemas.is_none()) {
            if (!PyDict_Check(key_schemas.ptr()))
                throw ddb2os::error(errc::option_invalid, std::string("key_schemas must be a dict of table name -> key "
                                                                      "attribute names, not ") + Py_TYPE(key_schemas.ptr())->tp_name);
            const py::object items = steal(PyDict_Items(key_schemas.ptr()));  // its own copy
            for (py::handle item : items) {
                const std::string table = option_str(PyTuple_GET_ITEM(item.ptr(), 0), "a key_schemas table name");
                opt.key_schemas[table] = key_schema_of(table, PyTuple_GET_ITEM(item.ptr(), 1));
            }
        }
        opt.numbers = number_mode_of(option_str(numbers, "numbers"));
        opt.lists = list_policy_of(option_str(lists, "lists"));
        opt.max_bytes = option_size(max_bytes, "max_bytes");
        opt.max_actions = option_size(max_actions, "max_actions");
        opt.skip_ttl_deletes = option_bool(skip_ttl_deletes, "skip_ttl_deletes");
        if (!exclude.is_none()) opt.exclude_attributes = names_of(exclude, "exclude", false);
        if (!include.is_none()) opt.include_attributes = names_of(include, "include", false);
        ddb2os::validate(opt);
        PyObject* e = event.ptr();
        std::string_view raw;
        if (raw_json_view(e, raw)) {
            py::gil_scoped_release release;
            return ddb2os::build_bulk(raw, opt);
        }
        if (!PyDict_Check(e) && !PyList_Check(e) && !PyTuple_Check(e))
            throw ddb2os::error(errc::event_not_object,
                                "the event must be a dict with a \"Records\" list (or a list of records), not " +
                                    std::string(Py_TYPE(e)->tp_name));
        return ddb2os::build_bulk<python_adapter>(e, opt);
    });
    bulk_result_py out;
    for (auto& b : r.bodies) {
        out.bodies.append(py::bytes(b.data.data(), b.data.size()));
        out.body_records.push_back(std::move(b.records));
    }
    for (auto& e : r.errors)
        out.errors.append(record_error_py{e.record, e.sequence_number, e.event_id, e.id(), e.path, e.message});
    out.superseded = r.superseded;
    out.actions = r.actions;
    out.skipped_ttl = r.skipped_ttl;
    out.ttl_deletes = r.ttl_deletes;
    out.records = std::move(r.records);
    return out;
}

std::string_view bytes_view(PyObject* o, const char* what) {
    if (PyBytes_Check(o)) return {PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o))};
    if (PyByteArray_Check(o)) return {PyByteArray_AS_STRING(o), static_cast<std::size_t>(PyByteArray_GET_SIZE(o))};
    if (PyUnicode_Check(o)) return utf8(o, what, "sigv4.bad_argument");
    throw ddb2os::error("sigv4.bad_argument", std::string(what) + " must be bytes or str, not " + Py_TYPE(o)->tp_name);
}

// As bytes_view, for a view that must outlive a GIL release: a bytearray (which another thread
// could resize meanwhile) is copied into bytes, and the object viewed is held in `keep` (a dict's
// entry could be replaced meanwhile, freeing it).
std::string_view held_view(PyObject* o, const char* what, std::vector<py::object>& keep) {
    if (PyByteArray_Check(o)) {
        keep.push_back(steal(PyBytes_FromStringAndSize(PyByteArray_AS_STRING(o), PyByteArray_GET_SIZE(o))));
        return bytes_view(keep.back().ptr(), what);
    }
    keep.push_back(py::reinterpret_borrow<py::object>(o));
    return bytes_view(o, what);
}

// One cache for the process: Lambda signs with the same key, date, region and service all day.
ddb2os::sigv4::signing_key_cache& key_cache() {
    static ddb2os::sigv4::signing_key_cache cache(16);
    return cache;
}

// The request Python passes, as a sigv4::request viewing its objects' buffers (`keep` holds any
// object made on the way). Throws ddb2os::error or py::error_already_set.
void read_request(PyObject* method, PyObject* url, PyObject* headers, PyObject* body, ddb2os::sigv4::request& req,
                  std::vector<py::object>& keep) {
    namespace sigv4 = ddb2os::sigv4;
    if (!PyUnicode_Check(method))
        throw ddb2os::error("sigv4.bad_argument", std::string("method must be str, not ") + Py_TYPE(method)->tp_name);
    req.method = utf8(method, "method", "sigv4.bad_argument");  // the call holds method, url and body for its whole length
    // Signed as it is sent: requests, urllib3 and botocore send the method upper-cased, and a URL's
    // space or non-ASCII byte percent-encoded (the transport encodes them before signing too).
    const auto held = [&](std::string text) {
        keep.push_back(steal(PyBytes_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()))));
        return std::string_view(PyBytes_AS_STRING(keep.back().ptr()), text.size());
    };
    if (std::any_of(req.method.begin(), req.method.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
        std::string upper(req.method);
        for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
        req.method = held(std::move(upper));
    }
    req.url = held_view(url, "url", keep);
    if (std::any_of(req.url.begin(), req.url.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u >= 0x7F;
        }))
        req.url = held(ddb2os::detail::encode_unsafe_url_bytes(std::string(req.url)));
    req.headers.clear();
    if (!PyDict_Check(headers) && headers != Py_None && PyObject_HasAttrString(headers, "keys")) {
        // Any other mapping (requests' CaseInsensitiveDict, MappingProxyType) as a dict of its
        // items: iterated, a mapping gives its keys, which are not (name, value) pairs.
        keep.push_back(steal(PyDict_New()));
        if (PyDict_Merge(keep.back().ptr(), headers, 1) != 0) throw py::error_already_set();
        headers = keep.back().ptr();
    }
    if (PyDict_Check(headers)) {  // the GIL is released later (a large body's hash): every entry is held
        Py_ssize_t pos = 0;
        PyObject *k = nullptr, *v = nullptr;
        while (PyDict_Next(headers, &pos, &k, &v))
            req.headers.push_back({held_view(k, "a header name", keep), held_view(v, "a header value", keep)});
    } else if (headers != Py_None) {
        const char* const wrong = "headers must be a mapping or a sequence of (name, value) pairs";
        if (!PyObject_HasAttrString(headers, "__iter__") || PyUnicode_Check(headers) || PyBytes_Check(headers))
            throw ddb2os::error("sigv4.bad_argument", wrong);
        for (py::handle pair : py::reinterpret_borrow<py::iterable>(headers)) {
            // A tuple or list of two; a 2-character str would read as a pair of its characters.
            if (!PyTuple_Check(pair.ptr()) && !PyList_Check(pair.ptr())) throw ddb2os::error("sigv4.bad_argument", wrong);
            py::tuple t = steal(PySequence_Tuple(pair.ptr()));
            if (t.size() != 2) throw ddb2os::error("sigv4.bad_argument", wrong);
            keep.emplace_back(t);
            req.headers.push_back({held_view(t[0].ptr(), "a header name", keep), held_view(t[1].ptr(), "a header value", keep)});
        }
    }
    req.body = body != Py_None ? sigv4::payload::bytes(bytes_view(body, "body")) : sigv4::payload();
}

// None: now. Otherwise a timezone-aware datetime.
std::chrono::system_clock::time_point time_of(PyObject* timestamp) {
    if (timestamp == Py_None) return std::chrono::system_clock::now();
    py::handle ts(timestamp);
    // An int or a float raised AttributeError from utcoffset(), naming nothing. A datetime, or an
    // object that behaves as one (arrow's, pendulum's), is asked for its offset and timestamp.
    if (!PyObject_HasAttrString(timestamp, "utcoffset") || !PyObject_HasAttrString(timestamp, "timestamp"))
        throw ddb2os::error("sigv4.bad_time", std::string("timestamp must be a timezone-aware datetime, not ") + Py_TYPE(timestamp)->tp_name);
    if (ts.attr("utcoffset")().is_none())
        throw ddb2os::error("sigv4.bad_time", "timestamp must be a timezone-aware datetime");
    const py::object stamp = ts.attr("timestamp")();
    const double seconds = PyFloat_AsDouble(stamp.ptr());  // an int or a float; anything else is an error
    if (seconds == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        throw ddb2os::error("sigv4.bad_time", std::string("timestamp.timestamp() must give a number, not ") +
                                                  Py_TYPE(stamp.ptr())->tp_name);
    }
    // The clock's duration is an integer (nanoseconds with libstdc++, which hold the years 1677 to
    // 2262): a time past it, or not finite, is refused here, where converting it would be undefined.
    using std::chrono::system_clock;
    const double latest = std::chrono::duration<double>(system_clock::duration::max()).count();
    if (!(seconds >= 0 && seconds < 253402300800.0))  // 10000-01-01; false for a NaN too
        throw ddb2os::error("sigv4.bad_time", "signing time is outside the years 1970 to 9999");
    if (seconds > latest - 1.0)  // a second short of it: a double that near rounds to the limit itself
        throw ddb2os::error("sigv4.bad_time", "signing time is past the year " +
                                                  std::to_string(1970 + static_cast<long>(latest / 31556952.0)) +
                                                  ", the last this platform's system clock holds");
    return system_clock::time_point(
        std::chrono::duration_cast<system_clock::duration>(std::chrono::duration<double>(seconds)));
}

// Hashing a large body needs no Python object: done without the GIL, the payload becomes its hash.
// Only for an immutable body (bytes, str): another thread could resize a bytearray meanwhile.
// Releasing and taking back the GIL costs more than a small body's hash.
void hash_large_body(ddb2os::sigv4::request& req, PyObject* body) {
    if (req.body.type() != ddb2os::sigv4::payload::kind::bytes || req.body.data().size() < 64 * 1024 ||
        !(PyBytes_Check(body) || PyUnicode_Check(body)))
        return;
    ddb2os::sigv4::sha256_digest d;
    {
        py::gil_scoped_release release;
        d = ddb2os::detail::sha256(req.body.data());
    }
    req.body = ddb2os::sigv4::payload::sha256(d);
}

// One call's request, read in the order that keeps a Signer safe: the time first (a tzinfo's
// utcoffset is Python code, which could sign again), then the request (views into the call's own
// objects; `keep` holds any made on the way), then a large body's hash without the GIL.
struct call_request {
    std::chrono::system_clock::time_point when;
    std::vector<py::object> keep;
    ddb2os::sigv4::request req;

    call_request(PyObject* method, PyObject* url, PyObject* headers, PyObject* body, PyObject* timestamp)
        : when(time_of(timestamp)) {
        read_request(method, url, headers, body, req, keep);
        hash_large_body(req, body);
    }
};

// A str of text that is almost always ASCII (dates, hex, base64 tokens) without a UTF-8 decode.
PyObject* ascii_str(std::string_view v) {
    std::uint64_t high = 0;  // the top bits of every byte, eight at a time
    std::size_t i = 0;
    for (; i + 8 <= v.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, v.data() + i, 8);
        high |= w;
    }
    for (; i < v.size(); ++i) high |= static_cast<unsigned char>(v[i]);
    if ((high & 0x8080808080808080ull) != 0)
        return PyUnicode_FromStringAndSize(v.data(), static_cast<Py_ssize_t>(v.size()));
    PyObject* s = PyUnicode_New(static_cast<Py_ssize_t>(v.size()), 127);
    if (s != nullptr) std::memcpy(PyUnicode_DATA(s), v.data(), v.size());
    return s;
}

// The headers to add, as a dict (title case throughout, as the API names them; header
// names are case-insensitive): X-Amz-Security-Token, X-Amz-Date, X-Amz-Content-Sha256 when
// sent, Authorization. The names are interned once.
// `date_str`, when given, is the X-Amz-Date value as a str already (a Signer keeps it for the second).
// The views may point into a signer: every str is made before the dict, whose allocation can run
// the garbage collector, and so Python code that could sign again with the same signer.
py::dict headers_dict(std::string_view token, std::string_view amz_date, std::string_view sha,
                      std::string_view authorization, PyObject* date_str = nullptr) {
    static PyObject* const names[] = {PyUnicode_InternFromString("X-Amz-Security-Token"),
                                      PyUnicode_InternFromString("X-Amz-Date"),
                                      PyUnicode_InternFromString("X-Amz-Content-Sha256"),
                                      PyUnicode_InternFromString("Authorization")};
    const std::string_view texts[] = {token, amz_date, sha, authorization};
    py::object values[4];
    for (int i = 0; i < 4; ++i) {
        if (i != 1 && i != 3 && texts[i].empty()) continue;
        values[i] = i == 1 && date_str != nullptr ? py::reinterpret_borrow<py::object>(date_str)
                                                  : steal(ascii_str(texts[i]));
    }
    py::dict out;
    for (int i = 0; i < 4; ++i)
        if (values[i] && PyDict_SetItem(out.ptr(), names[i], values[i].ptr()) != 0) throw py::error_already_set();
    return out;
}

// Throws credentials.incomplete for an empty key id or secret, sigv4.bad_argument for a value that
// is not a str, and for a key id or session token a header cannot carry (a line break from a copied
// variable would end the header and start another), by the curl transport's own rule. Names the
// argument, never quotes one.
ddb2os::credentials credentials_of(py::handle access_key, py::handle secret_key, py::handle session_token) {
    constexpr const char* id = "sigv4.bad_argument";
    std::string key_id = str_arg(access_key, "access_key", id);
    std::string token = session_token.is_none() ? std::string() : str_arg(session_token, "session_token", id);
    if (!ddb2os::detail::valid_header({"Authorization", key_id}))
        throw ddb2os::error(id, "access_key holds a control character (a line break?): it cannot be sent in a header");
    if (!ddb2os::detail::valid_header({"X-Amz-Security-Token", token}))
        throw ddb2os::error(id, "session_token holds a control character (a line break?): it cannot be sent in a header");
    return {std::move(key_id), str_arg(secret_key, "secret_key", id), std::move(token)};
}

py::dict sign(py::handle method, py::handle url, py::handle headers, py::handle body, py::handle region_arg,
              py::handle service_arg, py::handle access_key, py::handle secret_key, py::handle session_token,
              py::handle timestamp) {
    namespace sigv4 = ddb2os::sigv4;
    return guarded([&] {
        const std::string region = str_arg(region_arg, "region", "sigv4.bad_argument"),
                          service = str_arg(service_arg, "service", "sigv4.bad_argument");
        const ddb2os::credentials creds = credentials_of(access_key, secret_key, session_token);
        const call_request call(method.ptr(), url.ptr(), headers.ptr(), body.ptr(), timestamp.ptr());
        const sigv4::signing_params params{region, service, call.when, sigv4::options::for_service(service)};
        const sigv4::signing_result r = sigv4::sign(call.req, creds, params, &key_cache());
        std::string_view token, date, sha, auth;
        for (const auto& f : r.headers)
            (f.name == "X-Amz-Security-Token" ? token : f.name == "X-Amz-Date" ? date
             : f.name == "Authorization" ? auth : sha) = f.value;
        return headers_dict(token, date, sha, auth);
    });
}

// A time budget: a positive number of seconds (not a bool, not NaN), at most a year (inf too), so
// that now + budget fits a clock's duration.
double seconds_of(py::handle h) {
    const double s = PyBool_Check(h.ptr()) ? -1.0 : PyFloat_AsDouble(h.ptr());
    PyErr_Clear();
    if (!(s > 0.0))
        throw ddb2os::error(errc::option_invalid, std::string("seconds must be a positive number, not ") + Py_TYPE(h.ptr())->tp_name);
    return std::min(s, 86400.0 * 365);
}

// ddb2os.Signer: a sigv4::signer (credentials, region and service bound once, like botocore's
// SigV4Auth), so that signing a request parses only the request. The GIL guards the signer: from
// its sign() until its results are copied out, no Python code runs (none that could sign again
// with it, from this thread or another); the request is each call's own.
struct py_signer {
    ddb2os::sigv4::signer signer;
    py::object amz_date;  // the last X-Amz-Date value as a str: the same for a second
};

// A call's arguments read by name or position here, not by pybind11: its error for a call that
// matches no signature (a misspelt or missing keyword, one too many) quotes every argument, a
// secret key, a session token or a whole event included. `positional`: how many of `names` may
// come by position; `out` holds the defaults (an empty handle: required).
template <std::size_t N>
void read_arguments(const char* fn, const py::args& args, const py::kwargs& kwargs, const char* const (&names)[N],
                    std::size_t positional, py::handle (&out)[N]) {
    const std::string f(fn);
    if (args.size() > positional)
        throw py::type_error(positional == 0 ? f + "() takes keyword arguments only"
                                             : f + "() takes at most " + std::to_string(positional) + " positional arguments");
    bool given[N] = {};
    for (std::size_t i = 0; i < args.size(); ++i) {
        out[i] = args[i];
        given[i] = true;
    }
    for (auto kv : kwargs) {
        const std::string name = py::str(kv.first).cast<std::string>();
        std::size_t slot = N;
        for (std::size_t j = 0; j < N && slot == N; ++j)
            if (name == names[j]) slot = j;
        if (slot == N) throw py::type_error(f + "() got an unexpected keyword argument '" + name + "'");
        if (given[slot]) throw py::type_error(f + "() got multiple values for argument '" + name + "'");
        out[slot] = kv.second;
        given[slot] = true;
    }
    for (std::size_t j = 0; j < N; ++j)
        if (!out[j]) throw py::type_error(f + "() missing required argument '" + names[j] + "'");
}

// Signer(*, region, service, access_key, secret_key, session_token=None).
py_signer make_signer(const py::args& args, const py::kwargs& kwargs) {
    static const char* const names[] = {"region", "service", "access_key", "secret_key", "session_token"};
    py::handle a[5] = {py::handle(), py::handle(), py::handle(), py::handle(), Py_None};
    read_arguments("Signer", args, kwargs, names, 0, a);
    return guarded([&] {
        return py_signer{ddb2os::sigv4::signer(credentials_of(a[2], a[3], a[4]),
                                               str_arg(a[0], "region", "sigv4.bad_argument"),
                                               str_arg(a[1], "service", "sigv4.bad_argument")),
                         {}};
    });
}

// Signer.sign(method, url, headers=None, body=None, *, timestamp=None), as a METH_FASTCALL
// function: pybind11's general argument dispatch cost more than the signature itself.
PyObject* signer_sign(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    static const char* const names[] = {"method", "url", "headers", "body", "timestamp"};
    PyObject* a[5] = {nullptr, nullptr, Py_None, Py_None, Py_None};
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError, "Signer.sign() takes at most 4 positional arguments (%zd given)", nargs);
        return nullptr;
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) a[i] = args[i];
    const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, i);
        int slot = -1;
        for (int j = 0; j < 5 && slot < 0; ++j)
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0) slot = j;
        if (slot < 0 || slot < nargs) {
            PyErr_Format(PyExc_TypeError, slot < 0 ? "Signer.sign() got an unexpected keyword argument '%U'"
                                                   : "Signer.sign() got multiple values for argument '%U'", key);
            return nullptr;
        }
        a[slot] = args[nargs + i];
    }
    if (a[0] == nullptr || a[1] == nullptr) {
        PyErr_SetString(PyExc_TypeError, "Signer.sign() needs method and url");
        return nullptr;
    }
    try {
        // The method descriptor has checked that self is a Signer (by its real type); its C++ value
        // is read directly.
        py_signer* const made_signer = value_of<py_signer>(self);
        if (made_signer == nullptr) {
            PyErr_SetString(PyExc_TypeError, "Signer object that __init__ did not make");  // as made() says it
            return nullptr;
        }
        py_signer& s = *made_signer;
        return guarded([&] {
                   const call_request call(a[0], a[1], a[2], a[3], a[4]);
                   const ddb2os::sigv4::signed_headers& h = s.signer.sign(call.req, call.when);
                   if (!s.amz_date || static_cast<std::size_t>(PyUnicode_GET_LENGTH(s.amz_date.ptr())) != h.amz_date.size() ||
                       std::memcmp(PyUnicode_DATA(s.amz_date.ptr()), h.amz_date.data(), h.amz_date.size()) != 0)
                       s.amz_date = steal(ascii_str(h.amz_date));
                   return headers_dict(h.security_token, h.amz_date, h.content_sha256, h.authorization,
                                       s.amz_date.ptr());
               })
            .release()
            .ptr();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

// A new list of the event's records (from {"Records": [...]} or a list or tuple of records), or
// nothing for any other event (the engine then reports what is wrong with it). Runs no Python code.
// An event dict's records come back as {"Records": [...]}, a dict of this function's own, so that
// the engine's errors name them as the event does ("Records[3].eventSource", not "[3]...").
py::object pinned_records(PyObject* event) {
    PyObject* list = event;
    if (PyDict_Check(event) && !python_adapter::find(event, "Records", list)) return {};
    py::object pinned;
    if (PyList_Check(list)) pinned = steal(PyList_GetSlice(list, 0, PyList_GET_SIZE(list)));
    else if (PyTuple_Check(list)) pinned = py::reinterpret_borrow<py::object>(list);  // its items cannot change
    else return {};
    if (!PyDict_Check(event)) return pinned;
    py::dict wrapped;
    wrapped["Records"] = pinned;
    return py::object(std::move(wrapped));  // not `return std::move(...)`: g++ 16 calls that redundant
}

// The engine behind ddb2os.handler: built once per container from the checked configuration
// (ddb2os/_handler.py), holding its connections and credentials across invocations.
class py_sync_engine {
public:
    // Handles, not py::dict: pybind11's error for a wrong type would quote the environment (secret
    // keys) and the configuration.
    // shared: another engine's credentials (the backfill's segments: one fetch from the instance
    // metadata or container endpoint for all, not one each at once), or null for an engine's own.
    py_sync_engine(py::handle cfg_arg, py::handle env_arg, std::shared_ptr<ddb2os::credentials_provider> shared) {
        guarded([&] {
            if (!PyDict_Check(cfg_arg.ptr()) || !PyDict_Check(env_arg.ptr()))
                throw ddb2os::error(errc::option_invalid, "SyncEngine(config, environment) takes two dicts");
            const auto cfg = py::reinterpret_borrow<py::dict>(cfg_arg);
            const auto env_dict = py::reinterpret_borrow<py::dict>(env_arg);
            std::map<std::string, std::string> env;
            for (auto kv : env_dict) env[env_text(kv.first, "name")] = env_text(kv.second, "value");
            const ddb2os::environment environment = ddb2os::environment_from(env);
            auto get = [&](const char* k) { return str_arg(cfg[k], k, "option.invalid"); };
            const std::string region = get("region"), auth = get("auth");

            metadata_ = ddb2os::make_metadata_transport();  // short timeouts: off EC2 it must fail fast
            auto credentials = [&] {
                if (!creds_) creds_ = shared ? shared : ddb2os::default_credentials_provider(metadata_, environment);
                return creds_;
            };
            ddb2os::curl_options os_opt;
            os_opt.connect_timeout = std::chrono::milliseconds(py::cast<long>(cfg["connect_timeout_ms"]));
            os_opt.ca_file = get("ca_file");
            os_opt.gzip = py::cast<bool>(cfg["gzip"]);
            if (auth == "basic") {  // the password from the environment: the configuration holds no secret
                const auto password = env.find("OPENSEARCH_PASSWORD");
                if (password == env.end() || password->second.empty())
                    throw ddb2os::error(errc::option_invalid, "OPENSEARCH_PASSWORD is not set in the environment: basic authentication needs it");
                os_opt.auth = ddb2os::authentication::basic(get("username"), password->second);
            }
            else if (auth == "sigv4") os_opt.auth = ddb2os::authentication::sigv4(get("service"), region, credentials());
            os_ = std::make_unique<ddb2os::curl_transport>(get("endpoint"), os_opt);

            ddb2os::sync_options o;
            o.bulk.index = get("index");
            for (auto kv : py::cast<py::dict>(cfg["table_keys"]))
                o.bulk.key_schemas[py::cast<std::string>(kv.first)] = py::cast<ddb2os::key_schema>(kv.second);
            o.bulk.numbers = number_mode_of(get("numbers"));
            o.bulk.lists = list_policy_of(get("lists"));
            o.bulk.max_bytes = py::cast<std::size_t>(cfg["max_bytes"]);
            o.bulk.max_actions = py::cast<std::size_t>(cfg["max_actions"]);
            o.bulk.first_max_bytes = py::cast<std::size_t>(cfg["first_body_bytes"]);
            o.bulk.skip_ttl_deletes = py::cast<bool>(cfg["skip_ttl_deletes"]);
            if (cfg.contains("exclude")) o.bulk.exclude_attributes = names_of(cfg["exclude"], "exclude", false);
            if (cfg.contains("include")) o.bulk.include_attributes = names_of(cfg["include"], "include", false);
            o.refresh = get("refresh");
            o.dlq_index = get("dlq_index");
            default_keys_ = py::cast<ddb2os::key_schema>(cfg["default_keys"]);
            const std::string ddb_endpoint = get("dynamodb_endpoint");
            ddb_endpoint_set_ = !ddb_endpoint.empty();
            if (!ddb_endpoint.empty() && !region.empty()) {
                ddb2os::curl_options d;
                d.connect_timeout = os_opt.connect_timeout;
                d.auth = ddb2os::authentication::sigv4("dynamodb", region, credentials());
                ddb_ = std::make_unique<ddb2os::curl_transport>(ddb_endpoint, d);
            }
            o.resolve_key_schema = [this](const std::string& table, const std::string& table_arn,
                                          ddb2os::key_schema& schema, std::string& reason,
                                          ddb2os::http::clock::time_point deadline) {
                if (!default_keys_.empty()) {  // DB_HASH_KEY / DB_SORT_KEY: the founding Lambdas' variables
                    schema = default_keys_;
                    return true;
                }
                if (!ddb_) {
                    reason = ddb_endpoint_set_
                                 ? "DYNAMODB_ENDPOINT is set but AWS_REGION is not: DescribeTable's requests are signed "
                                   "for a region (set AWS_REGION, or TABLE_KEYS)"
                                 : "no DynamoDB endpoint to ask (set AWS_REGION, and DYNAMODB_ENDPOINT for one other "
                                   "than AWS's; or TABLE_KEYS)";
                    return false;
                }
                // By ARN: a stream from another account names its table's account there. An endpoint
                // that refuses an ARN as TableName (a DynamoDB-compatible one) is asked by name.
                if (ddb2os::describe_table_key_schema(*ddb_, table_arn, schema, reason, deadline)) return true;
                if (reason.find("ValidationException") == std::string::npos) return false;
                std::string by_name;
                if (ddb2os::describe_table_key_schema(*ddb_, table, schema, by_name, deadline)) return true;
                reason += "; then " + by_name;
                return false;
            };
            engine_ = std::make_unique<ddb2os::sync_engine>(std::move(o), *os_);
            return 0;
        });
    }

    // Its credentials, or null when it signs nothing (set once, by the constructor).
    const std::shared_ptr<ddb2os::credentials_provider>& credentials() const noexcept { return creds_; }

    py::dict process(py::handle event, double seconds) {
        // One batch at a time (the engine is not thread-safe, and it releases the GIL): another
        // thread's call waits here, without the GIL, which the running call needs back.
        // The budget counts from the call: time spent waiting for another call's batch is part of it.
        const auto deadline = ddb2os::http::clock::now() +
                              std::chrono::duration_cast<ddb2os::http::clock::duration>(std::chrono::duration<double>(seconds));
        std::unique_lock<std::mutex> busy(mutex_, std::defer_lock);
        {
            py::gil_scoped_release release;
            busy.lock();
        }
        ddb2os::sync_report rep = guarded([&] {
            PyObject* e = event.ptr();
            std::string_view raw;
            if (raw_json_view(e, raw)) {
                py::gil_scoped_release release;
                return engine_->process(raw, deadline);
            }
            // The engine releases the GIL around network waits (a DescribeTable, the last POST, the
            // dead letters' POST) and reads the records again afterwards: another thread could change
            // the event meanwhile and free records still in use. It gets a list of its own, the
            // records pinned in it (the array form of an event); nested values are only read with
            // the GIL held.
            const py::object records = pinned_records(e);
            return engine_->process<python_adapter, py::gil_scoped_release>(records ? records.ptr() : e, deadline);
        });
        // Building the dict can run Python code (the cyclic GC's finalizers): not with the engine held.
        busy.unlock();
        py::dict out;
        py::list failures, items;
        for (const auto& f : rep.failures) {
            const py::object seq = text(f.sequence_number);
            failures.append(py::dict(py::arg("record") = f.record, py::arg("sequence_number") = seq,
                                     py::arg("reason") = text(f.reason)));
            items.append(seq);
        }
        out["batch_item_failures"] = items;
        out["failures"] = failures;
        out["log_line"] = text(rep.log_line());
        out["records"] = rep.records;
        out["actions"] = rep.actions;
        out["superseded"] = rep.superseded;
        out["skipped_ttl"] = rep.skipped_ttl;
        out["ttl_deletes"] = rep.ttl_deletes;
        out["requests"] = rep.requests;
        out["bytes"] = rep.bytes;
        out["retries"] = rep.retries;
        out["indexed"] = rep.indexed;
        out["deleted"] = rep.deleted;
        out["version_conflicts"] = rep.version_conflicts;
        out["dead_lettered"] = rep.dead_lettered;
        out["failed"] = rep.failed;
        out["milliseconds"] = rep.milliseconds;
        return out;
    }

private:
    // A str of the engine's text, any invalid UTF-8 replaced (a reason can quote a server's
    // answer): a decoding error here would lose the whole batch's report.
    static py::object text(const std::string& s) {
        return steal(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
    }

    std::shared_ptr<ddb2os::http::transport> metadata_;
    std::shared_ptr<ddb2os::credentials_provider> creds_;
    std::unique_ptr<ddb2os::curl_transport> os_, ddb_;
    std::unique_ptr<ddb2os::sync_engine> engine_;
    ddb2os::key_schema default_keys_;
    bool ddb_endpoint_set_ = false;  // DYNAMODB_ENDPOINT given (it is not used without a region)
    std::mutex mutex_;
};

}  // namespace

// The C++ value of `self` (value_of), or a TypeError: for an object without one, and for an object
// of another class, checked by its real type (isinstance trusts a __class__ attribute, which a
// Mock(spec=...) sets).
template <class T>
T& made(py::handle self, const char* type) {
    const py::detail::type_info* const info = bound_type<T>();
    if (info == nullptr || !PyObject_TypeCheck(self.ptr(), info->type))
        throw py::type_error(std::string("a ") + type + " object is needed, not " + Py_TYPE(self.ptr())->tp_name);
    if (T* value = value_of<T>(self.ptr())) return *value;
    throw py::type_error(std::string(type) + " object that __init__ did not make");
}

// pybind11's objects cannot be pickled; protocols 0 and 1 ended the process (copyreg makes the
// object anew without a registered base) instead of raising as 2 and up do.
inline auto refuse_pickle(const char* type) {
    return [type](py::handle, py::handle) -> py::object {
        throw py::type_error(std::string("cannot pickle 'ddb2os.") + type + "' object");
    };
}

// A read-only attribute of T's field, through made().
template <class T, class M>
auto field(M T::*member, const char* type) {
    return [member, type](py::handle self) -> M { return made<T>(self, type).*member; };
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "ddb2os native core (private: use the ddb2os package)";
    m.attr("__version__") = ddb2os::version_string;

    m.def("unmarshal", [](py::handle image) { return guarded([&] { return py_unmarshaller().image(image.ptr()); }); },
          py::arg("image"));
    m.def("unmarshal_value", [](py::handle v) { return guarded([&] { return py_unmarshaller().value(v.ptr()); }); },
          py::arg("value"));
    m.def("to_json", &to_json, py::arg("image"), py::kw_only(), py::arg("numbers") = "exact",
          py::arg("lists") = "stringify");
    m.def("document_id", &document_id, py::arg("keys"), py::arg("key_schema"));

    using E = record_error_py;
    // Named as ddb2os exports it: ddb2os.RecordError is the exception a handler raises.
    static const char* const error_type = "BulkRecordError";
    py::class_<record_error_py>(m, "BulkRecordError")
        .def("__reduce_ex__", refuse_pickle("BulkRecordError"))
        .def_property_readonly("record", field(&E::record, error_type))
        .def_property_readonly("sequence_number", field(&E::sequence_number, error_type))
        .def_property_readonly("event_id", field(&E::event_id, error_type))
        .def_property_readonly("id", field(&E::id, error_type))
        .def_property_readonly("path", field(&E::path, error_type))
        .def_property_readonly("message", field(&E::message, error_type))
        .def("__str__", [](py::handle self) {
            const E& e = made<E>(self, error_type);
            return "[ddb2os." + e.id + "] " + (e.path.empty() ? "" : e.path + ": ") + e.message;
        })
        .def("__repr__", [](py::handle self) {
            const E& e = made<E>(self, error_type);
            return "BulkRecordError(record=" + std::to_string(e.record) + ", sequence_number=" +
                   py::repr(py::str(e.sequence_number)).cast<std::string>() + ", id=" +
                   py::repr(py::str(e.id)).cast<std::string>() + ", path=" +
                   py::repr(py::str(e.path)).cast<std::string>() + ")";
        });

    using R = bulk_result_py;
    static const char* const result_type = "BulkResult";
    py::class_<bulk_result_py>(m, "BulkResult")
        .def("__reduce_ex__", refuse_pickle("BulkResult"))
        .def_property_readonly("bodies", field(&R::bodies, result_type))
        .def_property_readonly("errors", field(&R::errors, result_type))
        .def_property_readonly("superseded", field(&R::superseded, result_type))
        .def_property_readonly("actions", field(&R::actions, result_type))
        .def_property_readonly("skipped_ttl", field(&R::skipped_ttl, result_type))
        .def_property_readonly("ttl_deletes", field(&R::ttl_deletes, result_type))
        .def_property_readonly("body_records", field(&R::body_records, result_type))
        .def_property_readonly("sequence_numbers", [](py::handle self) {
            const R& r = made<R>(self, result_type);
            py::list out(r.records.size());
            for (std::size_t i = 0; i < r.records.size(); ++i) {
                const std::string_view s = r.records[i].sequence_number.view();
                out[i] = steal(PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr));
            }
            return out;
        })
        .def("__repr__", [](py::handle self) {
            const R& r = made<R>(self, result_type);
            return "BulkResult(bodies=" + std::to_string(py::len(r.bodies)) + ", actions=" + std::to_string(r.actions) +
                   ", errors=" + std::to_string(py::len(r.errors)) + ", superseded=" + std::to_string(r.superseded) + ")";
        });

    m.def("sign", &sign, py::arg("method"), py::arg("url"), py::arg("headers"), py::arg("body"), py::kw_only(),
          py::arg("region"), py::arg("service"), py::arg("access_key"), py::arg("secret_key"),
          py::arg("session_token") = py::none(), py::arg("timestamp") = py::none());

    py::class_<py_signer> signer(m, "Signer");
    signer
        .def("__reduce_ex__", refuse_pickle("Signer"))
        .def(py::init(&make_signer))
        .def_property_readonly("region", [](py::handle self) { return made<py_signer>(self, "Signer").signer.region(); })
        .def_property_readonly("service", [](py::handle self) { return made<py_signer>(self, "Signer").signer.service(); })
        .def_property_readonly("access_key",
                               [](py::handle self) { return made<py_signer>(self, "Signer").signer.creds().access_key_id(); })
        .def("__repr__", [](py::handle self) {  // the key id only: never the secret or the token
            const py_signer& s = made<py_signer>(self, "Signer");
            return "Signer(region=" + py::repr(py::str(s.signer.region())).cast<std::string>() +
                   ", service=" + py::repr(py::str(s.signer.service())).cast<std::string>() +
                   ", access_key=" + py::repr(py::str(s.signer.creds().access_key_id())).cast<std::string>() +
                   ", secret_key=****" + (s.signer.creds().has_session_token() ? ", session_token=****" : "") + ")";
        });
    static PyMethodDef signer_sign_def = {
        "sign", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&signer_sign)), METH_FASTCALL | METH_KEYWORDS,
        "sign(method, url, headers=None, body=None, *, timestamp=None) -> dict: the headers to add."};
    py::setattr(signer, "sign",
                steal(PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(signer.ptr()), &signer_sign_def)));

    py::class_<py_sync_engine>(m, "SyncEngine")
        .def("__reduce_ex__", refuse_pickle("SyncEngine"))
        .def(py::init([](const py::args& args, const py::kwargs& kwargs) {
            static const char* const names[] = {"config", "environment", "credentials_from"};
            py::handle a[3] = {py::handle(), py::handle(), Py_None};
            read_arguments("SyncEngine", args, kwargs, names, 2, a);
            std::shared_ptr<ddb2os::credentials_provider> shared;  // credentials_from: an engine of the same environment
            if (!a[2].is_none()) shared = made<py_sync_engine>(a[2], "SyncEngine").credentials();
            return std::make_unique<py_sync_engine>(a[0], a[1], std::move(shared));
        }))
        .def("process", [](py::handle self, const py::args& args, const py::kwargs& kwargs) {
            py_sync_engine& engine = made<py_sync_engine>(self, "SyncEngine");
            static const char* const names[] = {"event", "seconds"};
            py::handle a[2];
            read_arguments("process", args, kwargs, names, 2, a);
            return engine.process(a[0], guarded([&] { return seconds_of(a[1]); }));
        });

    m.def("bulk_bodies", &bulk_bodies, py::arg("event"), py::kw_only(), py::arg("index") = py::none(),
          py::arg("key_schemas") = py::none(), py::arg("numbers") = "exact", py::arg("lists") = "stringify",
          py::arg("max_bytes") = ddb2os::default_max_bulk_bytes, py::arg("max_actions") = ddb2os::default_max_bulk_actions,
          py::arg("skip_ttl_deletes") = false, py::arg("exclude") = py::none(),
          py::arg("include") = py::none());
}
