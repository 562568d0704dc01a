// The bulk options a fuzz input's first byte picks (fuzz_bulk, fuzz_bulk_adapters): each bit one option.
#pragma once

#include <ddb2os/bulk.hpp>

namespace fuzz {

inline ddb2os::bulk_options bulk_options_from(unsigned char b) {
    ddb2os::bulk_options o;
    o.numbers = (b & 3) == 0 ? ddb2os::number_mode::exact
                : (b & 3) == 1 ? ddb2os::number_mode::string : ddb2os::number_mode::double_;
    o.lists = (b & 4) ? ddb2os::list_policy::keep : ddb2os::list_policy::stringify;
    if (b & 8) o.key_schemas["Books"] = {"author", "bookTitle"};
    if (b & 16) o.max_bytes = 256, o.max_actions = 3;  // many bodies
    if (b & 32) o.external_versions = true;
    if (b & 64) o.skip_ttl_deletes = true;
    if (b & 128) o.exclude_attributes = {"price"}, o.include_attributes = {"a", "price", "author"};
    return o;
}

}  // namespace fuzz
