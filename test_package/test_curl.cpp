// The Conan package's test of its curl component (ddb2os::curl): the transport and the sync engine
// compile and link.
#include <cstdio>

#include <ddb2os/sync.hpp>
#include <ddb2os/transport/curl.hpp>

int main() {
    ddb2os::curl_transport transport("http://127.0.0.1:9");  // made, never used
    ddb2os::sync_options options;
    ddb2os::sync_engine engine(options, transport);
    std::puts("ddb2os::curl links");
    return 0;
}
