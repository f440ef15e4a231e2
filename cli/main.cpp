#include <iostream>
#include "pipeline/core/registry.hpp"
int main() {
    std::cout << rnnflow::Registry::global().names().size() << "\n";
    return 0;
}
