// adapters/nlohmann.hpp: the value adapter for nlohmann::json (convenience, not the fast path).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../config.hpp"
#include "../value_adapter.hpp"

DDB2OS_BEGIN_NAMESPACE

// Works for nlohmann::json (whose objects sort their keys) and nlohmann::ordered_json (which
// keeps them in input order, as ddb2os keeps attribute order).
template <class Json>
struct basic_nlohmann_adapter {
    using value = const Json*;

    static value_kind kind(value v) noexcept {
        switch (v->type()) {
            case Json::value_t::null: return value_kind::null;
            case Json::value_t::boolean: return value_kind::boolean;
            case Json::value_t::string: return value_kind::string;
            case Json::value_t::array: return value_kind::array;
            case Json::value_t::object: return value_kind::object;
            case Json::value_t::binary: return value_kind::binary;
            default: return value_kind::number;
        }
    }
    static string_ref string(value v) noexcept { return {v->template get_ref<const typename Json::string_t&>(), false}; }
    static std::string_view number_text(value v, std::string& scratch) {
        scratch = v->dump();
        return scratch;
    }
    static bool boolean(value v) noexcept { return v->template get<bool>(); }
    static std::string_view binary(value v) noexcept {
        const auto& b = v->get_binary();
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }
    static std::size_t size(value v) noexcept { return v->size(); }

    template <class F>
    static bool each_member(value v, F&& f) {
        for (auto it = v->begin(); it != v->end(); ++it)
            if (!f(string_ref{it.key(), false}, &it.value())) return false;
        return true;
    }
    static void only_member(value v, string_ref& key, value& val) {
        const auto it = v->begin();
        key = string_ref{it.key(), false};
        val = &it.value();
    }
    template <class F>
    static bool each_element(value v, F&& f) {
        for (const auto& e : *v)
            if (!f(&e)) return false;
        return true;
    }
    static bool find(value obj, std::string_view key, value& out) {
        auto it = obj->find(typename Json::object_t::key_type(key));
        if (it == obj->end()) return false;
        out = &*it;
        return true;
    }
};

using nlohmann_adapter = basic_nlohmann_adapter<nlohmann::json>;
using nlohmann_ordered_adapter = basic_nlohmann_adapter<nlohmann::ordered_json>;

DDB2OS_END_NAMESPACE
