// Fuzz target: the checkpoint reader (load_safetensors_bytes), and on a file it accepts, what a
// resume reads from it: the position and metrics rows in the metadata, the stage run states.
// Inputs that start with the .npy magic go to the SDK's other dense-file reader, load_npy_bytes
// (feature files).
#include <string>

#include "fuzz_util.hpp"
#include "pipeline/core/npy.hpp"
#include "pipeline/core/safetensors.hpp"
#include "pipeline/exec/resume.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rnnflow;
    const std::string bytes = fuzz::as_string(data, size);
    fuzz::expect_errors_only([&] {
        if (bytes.rfind("\x93NUMPY", 0) == 0) {
            (void)load_npy_bytes(bytes, "fuzz.npy");
            return;
        }
        const TensorFile tf = load_safetensors_bytes(bytes, "fuzz.safetensors");
        const auto states = stage_states(tf);
        for (const auto& [stage, st] : states)
            for (const auto& [name, text] : st.texts()) (void)st.number(name, 0);
        (void)RunPosition::read(tf.metadata, "fuzz.safetensors");
    });
    return 0;
}
