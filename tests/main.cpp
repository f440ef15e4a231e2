#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

// LeakSanitizer (sanitizer builds): fontconfig's process-lifetime caches are not leaks of ours
// (tests/lsan.supp explains). Compiled into the program so that every process gets it, however
// it is started (ctest, a test's child process, mpirun); unused in other builds.
extern "C" const char* __lsan_default_suppressions();
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
