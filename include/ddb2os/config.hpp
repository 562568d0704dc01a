// ddb2os: keep an OpenSearch index in sync with a DynamoDB table.
// config.hpp: version, namespace and tunables shared by every component.
#pragma once

#include <cstddef>

#define DDB2OS_VERSION_MAJOR 0
#define DDB2OS_VERSION_MINOR 1
#define DDB2OS_VERSION_PATCH 0

// An inline versioned namespace (as fmt does): a future ABI break changes v0 without
// changing the names users write.
#define DDB2OS_BEGIN_NAMESPACE namespace ddb2os { inline namespace v0 {
#define DDB2OS_END_NAMESPACE } }

// For the few hot paths whose call overhead measured larger than their work.
#if defined(__GNUC__) || defined(__clang__)
#define DDB2OS_ALWAYS_INLINE inline __attribute__((always_inline))
#define DDB2OS_NOINLINE __attribute__((noinline))
#define DDB2OS_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))  // after a lambda's parameter list
#else
#define DDB2OS_ALWAYS_INLINE inline
#define DDB2OS_NOINLINE
#define DDB2OS_ALWAYS_INLINE_LAMBDA
#endif

DDB2OS_BEGIN_NAMESPACE

inline constexpr const char* version_string = "0.1.0";

// DynamoDB's limit: "nested attributes up to 32 levels deep", counting the item itself as the
// first level. So an M or L can be nested at most 31 deep (a scalar or set inside the 31st is
// fine), exactly what DynamoDB (Local) accepts and refuses.
inline constexpr int max_nesting = 32;

// OpenSearch refuses an _id longer than 512 bytes.
inline constexpr std::size_t max_id_bytes = 512;

// 5 MiB: the safe bulk size for the smallest Amazon OpenSearch Service instances.
inline constexpr std::size_t default_max_bulk_bytes = 5u * 1024u * 1024u;
inline constexpr std::size_t default_max_bulk_actions = 1000;
// The largest max_bytes: 2^31 - 1 (a body's action offsets are 32-bit).
inline constexpr std::size_t max_bulk_bytes_limit = 2147483647u;

DDB2OS_END_NAMESPACE
