// misnamed_port: a test plug-in that breaks its role's contract (pipeline/core/role.hpp). Its
// optimiser calls the loss it minimises `loss` instead of `minimize`, so the engine could not find
// it; loading the plug-in must fail with an error naming the file, the type, the role and the
// port (tests/cli/plugin_errors.sh, tests/pipeline/plugin_loader_test.cpp), where the engine
// used to look the port up as index -1. Built in-tree as a MODULE library like any plug-in.
//
//   misnamed_sgd: w -= lr * g per parameter, then release_grad (plain SGD; it never runs, as the
//   plug-in never loads)
#include <cmath>

#include <rnnflow/registry.hpp>
#include <rnnflow/stage.hpp>

namespace {

using namespace rnnflow;

class MisnamedSgd final : public OptimizerStage {
public:
    static StageSchema schema() {
        return StageSchema("misnamed_sgd", "plain SGD whose loss port has the wrong name (tests)", Role::optimizer)
            .input("loss", PortType::loss, "the loss to minimise (the optimizer role calls it 'minimize')")
            .param_float("lr", 0.1, Range{0.0, 10.0}, "learning rate");
    }
    explicit MisnamedSgd(const Params& p) : lr_(p.get_float("lr")) {}

    void attach(std::vector<std::pair<std::string, Param*>> params) override { params_ = std::move(params); }
    double step(const StepInfo& step) override {
        (void)step;
        double sumsq = 0;
        for (auto& [name, p] : params_) {
            float* w = p->value.data<float>();
            const float* g = p->grad.data<float>();
            for (std::int64_t i = 0; i < p->value.numel(); ++i) {
                sumsq += static_cast<double>(g[i]) * g[i];
                w[i] -= static_cast<float>(lr_) * g[i];
            }
            release_grad(*p);
        }
        return std::sqrt(sumsq);
    }
    double learning_rate() const override { return lr_; }

private:
    double lr_;
    std::vector<std::pair<std::string, Param*>> params_;
};

void register_stages(Registry& r) { r.add<MisnamedSgd>(); }

}  // namespace

RNNFLOW_PLUGIN(misnamed_port, "an optimiser that breaks the optimizer role's contract (tests)", "1.0",
               register_stages)
