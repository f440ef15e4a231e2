// faulty: a test plug-in whose one stage fails where it is told to, for the engine's error paths
// (a plug-in stage that throws stops the run with its name, type and YAML location; the run
// folder stays consistent). Built in-tree as a MODULE library like any plug-in.
//
//   faulty: out = in (identity on a tensor, differentiable: diff_in = diff_out)
//   fail_in: none | prepare | forward | backward; fail_epoch, fail_batch (1-based, train split);
//   exception: rnnflow (RNNFLOW_CHECK) or std (std::runtime_error: the engine must wrap it too)
//   or, for the numerical guards: nan_forward | inf_forward (element 0 of the output) and
//   nan_backward (element 0 of the input gradient), on fail_count batches from fail_batch.
#include <limits>
#include <stdexcept>

#include <rnnflow/registry.hpp>
#include <rnnflow/stage.hpp>

namespace {

using namespace rnnflow;

class Faulty final : public ModelStage {
public:
    static StageSchema schema() {
        return StageSchema("faulty", "identity that fails on request (tests)", Role::model)
            .input("in", PortType::tensor, "any tensor (T, N, C)")
            .output("out", PortType::tensor, "the same tensor")
            .param_choice("fail_in", "none", {"none", "prepare", "forward", "backward", "nan_forward", "inf_forward", "nan_backward"},
                          "where to fail")
            .param_int("fail_epoch", 1, Range{1, 1e9}, "training epoch (1-based) of the failure")
            .param_int("fail_batch", 1, Range{1, 1e9}, "training batch (1-based) of the failure")
            .param_int("fail_count", 1, Range{1, 1e9}, "nan_*/inf_*: batches in a row that get the value")
            .param_choice("exception", "rnnflow", {"rnnflow", "std"}, "what is thrown")
            .differentiable();
    }
    explicit Faulty(const Params& p)
        : fail_in_(p.get_string("fail_in")), epoch_(p.get_int("fail_epoch")), batch_(p.get_int("fail_batch")),
          count_(p.get_int("fail_count")), std_(p.get_string("exception") == "std") {}

    void prepare(PrepareContext& ctx) override {
        if (fail_in_ == "prepare") fail("prepare");
        ctx.set_output_info("out", ctx.input_info("in"));
    }
    void forward(const Inputs& in, Outputs& out, Saved& saved, const StepInfo& step) override {
        (void)saved;
        if (fail_in_ == "forward" && now(step)) fail("forward");
        out.at("out") = in.at("in");
        if ((fail_in_ == "nan_forward" || fail_in_ == "inf_forward") && poisoned(step))
            out.at("out").data<float>()[0] = fail_in_ == "nan_forward" ? std::numeric_limits<float>::quiet_NaN()
                                                                       : std::numeric_limits<float>::infinity();
    }
    void backward(const Inputs& in, const Outputs& out, Saved& saved, const Grads& diff_dst,
                  Grads& diff_src, const StepInfo& step) override {
        (void)in; (void)out; (void)saved;
        if (fail_in_ == "backward" && now(step)) fail("backward");
        if (diff_src.has("in")) diff_src.at("in") = diff_dst.at("out");
        if (fail_in_ == "nan_backward" && poisoned(step) && diff_src.has("in"))
            diff_src.at("in").data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
    }

private:
    bool now(const StepInfo& s) const {
        return s.training() && s.epoch + 1 == epoch_ && s.batch + 1 == batch_;
    }
    bool poisoned(const StepInfo& s) const {
        return s.training() && s.epoch + 1 == epoch_ && s.batch + 1 >= batch_ && s.batch + 1 < batch_ + count_;
    }
    void fail(const char* where) const {
        if (std_) throw std::runtime_error(std::string("std failure in ") + where);
        RNNFLOW_CHECK(false, "failure requested in ", where);
    }
    std::string fail_in_;
    std::int64_t epoch_, batch_, count_;
    bool std_;
};

void register_stages(Registry& r) { r.add<Faulty>(); }

}  // namespace

RNNFLOW_PLUGIN(faulty, "a stage that fails on request (tests)", "1.0", register_stages)
