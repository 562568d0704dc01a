// adapters/python.hpp: the value adapter for Python objects (CPython C API), so the Python
// module reads a Lambda event dict in place: no json.dumps/json.loads round trip, no copy.
//
//   dict -> object   list, tuple -> array   str -> string   bool -> boolean   None -> null
//   int, float, Decimal (and any other object) -> number   bytes, bytearray -> binary (B values)
//
// Every function needs the GIL. Values are borrowed references that live as long as the event.
// No function here runs the event's own Python code (no __eq__, __hash__ or __str__ of its
// objects), so nothing can change or free the event while a component holds its values: keys
// are compared by their text, and only an exact int, float or decimal.Decimal has its str()
// read as a number.
#pragma once

#include <Python.h>

#include <string>
#include <string_view>

#include "../config.hpp"
#include "../detail/utf8.hpp"
#include "../value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

struct python_adapter {
    using value = PyObject*;
    // string()'s text is a str's own ASCII or CPython's checked UTF-8 (a lone surrogate reads as
    // an escape): the components need not check it again.
    static constexpr bool valid_utf8 = true;

    DDB2OS_ALWAYS_INLINE static value_kind kind(value v) noexcept {
        if (PyUnicode_Check(v)) return value_kind::string;
        if (PyDict_Check(v)) return value_kind::object;
        if (PyList_Check(v) || PyTuple_Check(v)) return value_kind::array;
        if (PyBool_Check(v)) return value_kind::boolean;  // before int: bool is an int
        if (v == Py_None) return value_kind::null;
        if (PyBytes_Check(v) || PyByteArray_Check(v)) return value_kind::binary;
        return value_kind::number;  // int, float, Decimal; any other object is a number without text
    }

    // A str that is not valid Unicode (a lone surrogate) reads as the JSON escape of one, so the
    // caller reports utf8.invalid with its path, in the words the raw JSON path uses for the same
    // string ("an unpaired UTF-16 surrogate"), instead of raising from here.
    DDB2OS_ALWAYS_INLINE static string_ref string(value v) noexcept {
        if (PyUnicode_IS_COMPACT_ASCII(v))  // most keys and values: the text is the str's own buffer
            return {std::string_view(static_cast<const char*>(PyUnicode_DATA(v)),
                                     static_cast<std::size_t>(PyUnicode_GET_LENGTH(v))),
                    false};
        Py_ssize_t n = 0;
        const char* p = PyUnicode_AsUTF8AndSize(v, &n);
        if (p == nullptr) {
            PyErr_Clear();
            return {std::string_view("\\ud800", 6), true};
        }
        return {std::string_view(p, static_cast<std::size_t>(n)), false};
    }

    // A dead letter's copy of a str string() cannot give (a lone surrogate): each code point, the
    // surrogates as U+FFFD, so the rest of the text the record was refused for is kept.
    static std::string_view replaced_text(value v, std::string& scratch) {
        const string_ref s = string(v);  // readies the str (Python 3.9-3.11)
        if (!s.escaped) return s.text;
        scratch.clear();
        const int kind = PyUnicode_KIND(v);
        const void* data = PyUnicode_DATA(v);
        for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(v); i < n; ++i) {
            const Py_UCS4 cp = PyUnicode_READ(kind, data, i);
            detail::append_utf8(scratch, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp);
        }
        return scratch;
    }

    // An exact int, float or decimal.Decimal: the numbers whose text is read (number_text).
    static bool exact_number(value v) noexcept {
        return PyLong_CheckExact(v) || PyFloat_CheckExact(v) || Py_TYPE(v) == decimal_type();
    }

    // What an error calls an object that reads as a number but is none (a set, a datetime, an
    // int subclass): "a Python set object" rather than "a number".
    static std::string foreign_name(value v) {
        if (kind(v) != value_kind::number || exact_number(v)) return {};
        return std::string("a Python ") + Py_TYPE(v)->tp_name + " object";
    }

    // The text of an exact int, float or decimal.Decimal (the standard library's str()); empty, so
    // an invalid number, for anything else: a subclass's or another object's str() is the event's
    // own code, which could change the event.
    static std::string_view number_text(value v, std::string& scratch) {
        if (!exact_number(v)) {
            scratch.clear();
            return scratch;
        }
        PyObject* s = PyObject_Str(v);
        if (s == nullptr) {
            PyErr_Clear();
            scratch.clear();
            return scratch;
        }
        Py_ssize_t n = 0;
        const char* p = PyUnicode_AsUTF8AndSize(s, &n);
        scratch.assign(p == nullptr ? "" : p, p == nullptr ? 0 : static_cast<std::size_t>(n));
        Py_DECREF(s);
        return scratch;
    }

    static bool boolean(value v) noexcept { return v == Py_True; }

    static std::string_view binary(value v) noexcept {
        if (PyBytes_Check(v))
            return {PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v))};
        return {PyByteArray_AS_STRING(v), static_cast<std::size_t>(PyByteArray_GET_SIZE(v))};
    }

    static std::size_t size(value v) noexcept {
        if (PyDict_Check(v)) return static_cast<std::size_t>(PyDict_GET_SIZE(v));
        if (PyList_Check(v)) return static_cast<std::size_t>(PyList_GET_SIZE(v));
        return static_cast<std::size_t>(PyTuple_GET_SIZE(v));
    }

    // An event's objects lie scattered in memory, and reading them is a chain of cache misses (the
    // dict's entry, the value object, a value dict's key table, ...). Members are taken in batches:
    // every value object is prefetched, then the key table of every value that is a dict, so that
    // the misses of a batch overlap instead of following one another. A batch holds references:
    // a caller's F that made any object could run Python code (the garbage collector's finalizers),
    // which could change the dict meanwhile. No caller in the library does: a guard for one that will.
    template <class F>
    static bool each_member(value v, F&& f) {
        constexpr int batch = 16;
        struct held {
            PyObject* keys[batch];
            PyObject* vals[batch];
            int n = 0;
            ~held() { release(); }
            void release() noexcept {
                for (int i = 0; i < n; ++i) {
                    Py_DECREF(keys[i]);
                    Py_DECREF(vals[i]);
                }
                n = 0;
            }
        } b;
        Py_ssize_t pos = 0;
        for (;;) {
            PyObject *k = nullptr, *val = nullptr;
            int n = 0;
            while (n < batch && PyDict_Next(v, &pos, &k, &val)) {
                prefetch(val);
                b.keys[n] = k;
                b.vals[n++] = val;
            }
            // The references are taken once every value's line is on its way (an increment is a
            // write: done at once, it would wait for each miss in turn). No Python code runs
            // before this point.
            for (int i = 0; i < n; ++i) {
                prefetch_contents(b.vals[i]);
                Py_INCREF(b.keys[i]);
                Py_INCREF(b.vals[i]);
            }
            b.n = n;
            if (n > 1)
                for (int i = 0; i < n; ++i) prefetch_single_value(b.vals[i]);
            for (int i = 0; i < n; ++i) {
                if (!f(key_string(b.keys[i]), b.vals[i])) return false;
            }
            b.release();
            if (n < batch) return true;
        }
    }

    // An attribute value's one member ({"S": ...}): read at once, without each_member's batch.
    // Borrowed like every value here (each_member's references end with each_member too).
    static void only_member(value v, string_ref& key, value& val) noexcept {
        Py_ssize_t pos = 0;
        PyObject *k = nullptr, *item = nullptr;
        PyDict_Next(v, &pos, &k, &item);
        key = key_string(k);
        val = item;
    }

    // The size and items are read again for each element, for the same reason.
    template <class F>
    static bool each_element(value v, F&& f) {
        const bool list = PyList_Check(v);
        constexpr Py_ssize_t ahead = 4;  // elements prefetched before they are read
        for (Py_ssize_t i = 0;; ++i) {
            const Py_ssize_t n = list ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
            if (i >= n) return true;
            PyObject* const* items = list ? reinterpret_cast<PyListObject*>(v)->ob_item
                                          : reinterpret_cast<PyTupleObject*>(v)->ob_item;
            if (i == 0)
                for (Py_ssize_t j = 1; j < n && j <= ahead; ++j) prefetch(items[j]);
            else if (i + ahead < n)
                prefetch(items[i + ahead]);
            struct ref {  // released on every way out, a thrown error included
                PyObject* o;
                ~ref() { Py_DECREF(o); }
            } item{items[i]};
            Py_INCREF(item.o);
            if (!f(item.o)) return false;
        }
    }

    // For a component that looks the same few names up in many objects (bulk_builder::pick, in
    // every record and its dynamodb object): which name each member's key is, remembered by the
    // key object and its position. One json.loads gives every record the same key objects in the
    // same order (its memo shares them), so after the first record a member is matched by one
    // pointer comparison instead of its text against each name (a tenth of a REMOVE batch's time).
    // A key remembered is held (a reference) until the memo goes, so no other object can take its
    // address meanwhile. One memo per call: the next event's keys are other objects.
    class name_memo {
    public:
        name_memo() = default;
        name_memo(const name_memo&) = delete;
        name_memo& operator=(const name_memo&) = delete;
        ~name_memo() {
            for (int i = 0; i < n_; ++i) Py_XDECREF(keys_[i]);
        }

    private:
        friend struct python_adapter;
        static constexpr int capacity = 16;
        PyObject* keys_[capacity] = {};
        signed char slots_[capacity] = {};
        int n_ = 0;
    };

    // Calls f(slot, value) for each member whose key is names[slot], in the dict's order.
    template <std::size_t N, class F>
    static void each_named_member(value obj, const std::string_view (&names)[N], name_memo& memo, F&& f) {
        static_assert(N < 128, "slots are signed chars");
        Py_ssize_t pos = 0;
        PyObject *k = nullptr, *v = nullptr;
        for (int j = 0; PyDict_Next(obj, &pos, &k, &v); ++j) {
            int slot;
            if (j < memo.n_ && memo.keys_[j] == k) {
                slot = memo.slots_[j];
            } else {
                slot = -1;
                const string_ref key = key_string(k);
                if (!key.escaped)  // an escaped text is a lone surrogate's: no name
                    for (std::size_t i = 0; i < N; ++i)
                        if (key.text == names[i]) {
                            slot = static_cast<int>(i);
                            break;
                        }
                if (j < name_memo::capacity && PyUnicode_CheckExact(k)) {  // a str: its release runs no code
                    Py_INCREF(k);
                    Py_XDECREF(memo.keys_[j]);
                    memo.keys_[j] = k;
                    memo.slots_[j] = static_cast<signed char>(slot);
                    if (j >= memo.n_) memo.n_ = j + 1;
                }
            }
            if (slot >= 0) {
                prefetch(v);
                f(slot, v);
            }
        }
    }

    // By the keys' text, in one pass over the members (a hashed lookup compares a key that is a
    // str subclass with its __eq__; the objects looked in are small: Keys, userIdentity, the event).
    static bool find(value obj, std::string_view key, value& out) noexcept {
        Py_ssize_t pos = 0;
        PyObject *k = nullptr, *v = nullptr;
        while (PyDict_Next(obj, &pos, &k, &v)) {
            if (key_string(k).text == key) {
                out = v;
                return true;
            }
        }
        return false;
    }

private:
    // A member's key: a key that is not a str reads as one invalid UTF-8 byte (reported with its path).
    static string_ref key_string(PyObject* k) noexcept {
        return PyUnicode_Check(k) ? string(k) : string_ref{std::string_view("\xff", 1), false};
    }

    // decimal.Decimal, once the decimal module has been imported (no Decimal exists before that);
    // looked up in sys.modules, never imported from here.
    static PyTypeObject* decimal_type() noexcept {
        static PyTypeObject* type = nullptr;  // kept for the process, as the module keeps it
        if (type == nullptr) {
            PyObject* module = PyDict_GetItemString(PyImport_GetModuleDict(), "decimal");  // borrowed
            PyObject* t = module == nullptr ? nullptr : PyObject_GetAttrString(module, "Decimal");
            if (t != nullptr && PyType_Check(t)) type = reinterpret_cast<PyTypeObject*>(t);
            else Py_XDECREF(t);
            PyErr_Clear();
        }
        return type;
    }

    static void prefetch(const void* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(p);
#else
        (void)p;
#endif
    }
    // A dict's key table (its first two lines: the header, indices and first entries).
    static void prefetch_contents(PyObject* o) noexcept {
        if (PyDict_Check(o)) {
            const char* keys = reinterpret_cast<const char*>(reinterpret_cast<PyDictObject*>(o)->ma_keys);
            prefetch(keys);
            prefetch(keys + 64);
        }
    }

    // The value of a one-member dict (an attribute value such as {"S": ...}).
    static void prefetch_single_value(PyObject* o) noexcept {
        if (PyDict_Check(o) && PyDict_GET_SIZE(o) == 1) {
            Py_ssize_t pos = 0;
            PyObject *k = nullptr, *v = nullptr;
            if (PyDict_Next(o, &pos, &k, &v)) prefetch(v);
        }
    }
};

DDB2OS_END_NAMESPACE
