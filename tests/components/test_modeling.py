"""Loading models and tokenizers: errors name the path."""

import pytest

from components.modeling import ModelLoadError, load_model, load_tokenizer

pytestmark = pytest.mark.slow


def test_loading_a_missing_model_says_which_path():
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        load_tokenizer("/tmp/does-not-exist")
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        load_model("/tmp/does-not-exist")
