"""Training-curve figures: one panel per scale, readable from one curve to eight."""

from components import plots

GRPO = {
    "reward": [0.2, 0.4, 0.6],
    "kl": [0.0, 0.01, 0.03],
    "completions_mean_length": [80.0, 70.0, 60.0],
    "reward_accuracy": [0.1, 0.3, 0.5],
    "reward_format": [0.5, 0.8, 0.9],
    "reward_accuracy_gap": [0.1, 0.1, 0.1],
}


def _labels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes]


def test_curves_group_by_scale_and_the_gap_stays_off_the_reward_axis():
    assert [plots.curve_group(n) for n in GRPO] == ["reward", "kl", "completions_mean_length", "reward", "reward", "reward - accuracy"]
    assert plots.curve_group("distilled_train_loss") == plots.curve_group("loss") == "loss"
    assert plots.curve_group("rewards_chosen") == plots.curve_group("rewards_margins") == "DPO implicit reward"
    assert plots.curve_group("rewards_accuracies") == "rewards_accuracies"  # a share, not an implicit reward


def test_grpo_curves_get_one_panel_per_scale_sharing_the_step_axis():
    fig = plots.plot_curves(GRPO, "grpo")
    assert len(fig.axes) == 4 and _labels(fig) == ["reward", "kl", "completions_mean_length", "reward_accuracy_gap"]
    reward = fig.axes[0]
    assert [line.get_label() for line in reward.get_lines()] == ["reward", "reward_accuracy", "reward_format"]
    assert reward.get_legend() is not None and fig.axes[1].get_legend() is None  # a lone curve is named by its axis
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "logging step", "logging step"]  # bottom of each column
    assert all(ax.get_shared_x_axes().joined(reward, ax) for ax in fig.axes)
    assert fig.get_suptitle() == "grpo"


def test_one_curve_is_one_panel_and_eight_fit_in_two_columns():
    one = plots.plot_curves({"train_loss": [2.0, 1.0]}, "sft")
    assert _labels(one) == ["train_loss"] and one.axes[0].get_xlabel() == "logging step"
    eight = {f"metric_{i}": [float(i), float(i + 1)] for i in range(7)} | {"empty": []}  # the empty one is dropped
    fig = plots.plot_curves(eight | {"metric_7": [1.0]}, "many")
    assert len(fig.axes) == 8 and {ax.get_subplotspec().colspan.start for ax in fig.axes} == {0, 1}
    assert [ax.get_xlabel() for ax in fig.axes].count("logging step") == 2


def test_an_odd_panel_count_leaves_the_last_column_labelled_where_it_ends():
    fig = plots.plot_curves({f"m{i}": [0.0, 1.0] for i in range(5)}, "five")  # 3 rows x 2 columns, one cell empty
    assert len(fig.axes) == 5
    labelled = [ax for ax in fig.axes if ax.get_xlabel() == "logging step"]
    assert [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in labelled] == [(1, 1), (2, 0)]
    assert all(tick.get_visible() for ax in labelled for tick in ax.get_xticklabels())


def test_only_empty_curves_still_give_a_figure():
    assert _labels(plots.plot_curves({"kl": []}, "nothing logged")) == ["no logged values"]


def test_the_base_tries_plot_shows_each_seed_where_it_stopped_and_the_floors():
    tries = [
        {"seed": 0, "val_probe_curve": [[200, 0.0], [400, 0.02]], "abandoned_at_step": 400},
        {"seed": 1000, "val_probe_curve": [[200, 0.01], [400, 0.5], [600, 0.9]]},
    ]
    fig = plots.plot_pretraining_tries(tries, min_val_probe=0.5, abandon_below=0.1, abandon_step=400)
    (ax,) = fig.axes
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["seed 0 (abandoned at 400)", "seed 1000", "base.min_val_probe 0.5", "abandoned under 0.1"]
    assert ax.get_xlabel() == "pretraining step" and ax.get_ylabel() == "validation sums answered"
    never = plots.plot_pretraining_tries(tries[1:], min_val_probe=0.5, abandon_below=0.0, abandon_step=400)
    assert "abandoned under" not in " ".join(t.get_text() for t in never.axes[0].get_legend().get_texts()), "no floor to mark"
