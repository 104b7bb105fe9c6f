"""Code and data versions: the git commit, also outside a checkout."""


def test_git_commit_outside_a_checkout_comes_from_the_image(tmp_path, monkeypatch):
    from components.versioning import git_commit

    monkeypatch.setenv("POSTTRAIN_GIT_COMMIT", "abc123")
    assert git_commit(tmp_path) == "abc123"
    assert git_commit(".") not in ("abc123", "unknown")
    assert git_commit(".").startswith(git_commit(".", short=True).removesuffix("-dirty"))
