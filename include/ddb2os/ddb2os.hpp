// ddb2os.hpp: everything but the libcurl transport (transport/curl.hpp, its own opt-in header).
#pragma once

#include "adapters/nlohmann.hpp"
#include "adapters/raw_json.hpp"
#include "bulk.hpp"
#include "config.hpp"
#include "credentials.hpp"
#include "credentials_http.hpp"
#include "document_id.hpp"
#include "http.hpp"
#include "error.hpp"
#include "index_name.hpp"
#include "normalize.hpp"
#include "sigv4.hpp"
#include "sync.hpp"
#include "unmarshal.hpp"
#include "value_adapter.hpp"
