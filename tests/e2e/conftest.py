import pytest

from harness import Gateway, Mock, free_port


@pytest.fixture(scope="session")
def mock():
    m = Mock(api_key="sk-upstream")
    yield m
    m.stop()


def standard_config(mock):
    return {
        "providers": [
            {"name": "mock", "type": "openai", "base_url": f"{mock.url}/v1",
             "api_key": "sk-upstream"},
            # A preset with a path prefix, keyed from the host environment.
            {"name": "qwen", "type": "qwen", "base_url": f"{mock.url}/compatible-mode/v1",
             "api_key": "env:LLMGW_TEST_DASHSCOPE_KEY"},
            {"name": "nokey", "type": "deepseek", "api_key": "env:LLMGW_TEST_UNSET_KEY"},
            {"name": "down", "type": "openai",
             "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "sk-upstream"},
        ],
        "models": [
            {"name": "gpt-4o-mini",
             "targets": [{"provider": "mock", "model": "gpt-4o-mini-2024-07-18"}]},
            {"name": "qwen-plus", "targets": [{"provider": "qwen"}]},
            {"name": "deepseek-chat", "targets": [{"provider": "nokey"}]},
            {"name": "broken", "targets": [{"provider": "down"}]},
            {"name": "text-embedding-3-small", "targets": [{"provider": "mock"}]},
        ],
        "limits": {"max_request_body_bytes": 65536},
    }


@pytest.fixture(scope="session")
def gateway(mock, tmp_path_factory):
    gw = Gateway(standard_config(mock), tmp_path_factory.mktemp("gw"),
                 env={"LLMGW_TEST_DASHSCOPE_KEY": "sk-upstream"})
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clear_mock(request):
    if "mock" in request.fixturenames:
        request.getfixturevalue("mock").clear()
