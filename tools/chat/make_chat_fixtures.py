#!/usr/bin/env python3
"""Renders real models' chat templates, and small templates covering the Jinja subset, with the
reference (transformers' own jinja2 environment: sandboxed, trim_blocks, lstrip_blocks,
raise_exception, its tojson) into tests/fixtures/chat/chat_cases.json.

Run: tools/.venv/bin/python tools/chat/make_chat_fixtures.py   (jinja2 and transformers pinned in
tools/requirements.txt). The templates are the `chat_template` strings of the models'
tokenizer_config.json (SmolLM2's also sits in its GGUF's `tokenizer.chat_template`).
"""
import json
import pathlib

import jinja2
from transformers.utils.chat_template_utils import _compile_jinja_template

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "chat" / "chat_cases.json"

# Qwen/Qwen2-7B-Instruct
QWEN2 = r"""{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""

# Qwen/Qwen2.5-7B-Instruct: tools, whitespace control, tojson, attribute access.
QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA3 = r"""{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"""

# mistralai/Mistral-7B-Instruct-v0.1
MISTRAL = r"""{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"""

# google/gemma-7b-it
GEMMA = r"""{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"""

# microsoft/Phi-3-mini-4k-instruct
PHI3 = r"""{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %}"""

# HuggingFaceTB/SmolLM2-135M-Instruct (as in its GGUF's tokenizer.chat_template: real newlines
# inside the string literals).
SMOLLM2 = """{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}"""

TEMPLATES = {
    "qwen2": {"template": QWEN2, "bos_token": "", "eos_token": "<|im_end|>"},
    "qwen2.5": {"template": QWEN25, "bos_token": "", "eos_token": "<|im_end|>"},
    "llama3": {"template": LLAMA3, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral": {"template": MISTRAL, "bos_token": "<s>", "eos_token": "</s>"},
    "gemma": {"template": GEMMA, "bos_token": "<bos>", "eos_token": "<eos>"},
    "phi3": {"template": PHI3, "bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "smollm2": {"template": SMOLLM2, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
}

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}]

CONVERSATIONS = {
    "one_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [{"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."}],
    "system_multi_turn": [{"role": "system", "content": "  Answer in French.\n"},
                          {"role": "user", "content": "  Good morning  "},
                          {"role": "assistant", "content": "Bonjour !"},
                          {"role": "user", "content": "And \"goodbye\"? It's late."}],
    "unicode": [{"role": "user", "content": "Grüße aus Köln 🌍 — 日本語で答えて\u3000"},
                {"role": "assistant", "content": "こんにちは！\tÇa va ?"},
                {"role": "user", "content": "Ελληνικά; emoji 👩‍💻"}],
    "bad_order": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    "tool_call": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": "",
                   "tool_calls": [{"type": "function", "function": {
                       "name": "get_weather", "arguments": {"city": "Paris"}}}]},
                  {"role": "tool", "content": "{\"temp_c\": 21.5}"},
                  {"role": "tool", "content": "sunny"}],
}


def render(template, variables):
    try:
        return {"expected": _compile_jinja_template(template).render(**variables)}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e)}


# Small templates over the Jinja subset (variables in "variables"; expected by jinja2 above).
JINJA = [
    ("{{ 'a' ~ 1 ~ none ~ true }}|{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }}", {}),
    ("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 123456789.0 * 10 }} {{ 3 * 'ab' }}", {}),
    ("{{ x }}|{{ x is defined }}|{{ y is defined }}|{{ y is undefined }}|{{ n is none }}|{{ s is string }}|{{ d is mapping }}|{{ l is mapping }}",
     {"x": 5, "n": None, "s": "str", "d": {"a": 1}, "l": [1]}),
    ("{{ l }} {{ d }} {{ none }} {{ [1, 'a', none, true, 2.5] }} {{ {'k': 'it\\'s'} }}", {"l": ["x", "y"], "d": {"a": [1, {"b": None}]}}),
    ("{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[5] }}|{{ s[1:3] }} {{ s[-2:] }} {{ s[::-1] }}",
     {"l": [1, 2, 3, 4], "s": "héllo"}),
    ("{% for x in l %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }} {% endfor %}", {"l": ["a", "b", "c"]}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for k, v in d | items %}{{ v }}{% endfor %}",
     {"d": {"z": 1, "a": 2, "m": 3}}),
    ("{% for x in l if x > 1 %}{{ x }}{{ loop.index }}{% else %}empty{% endfor %}|{% for x in [] %}no{% else %}empty{% endfor %}", {"l": [1, 2, 3]}),
    ("{% for x in l %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", {"l": [0, 1, 2, 3, 4]}),
    ("{% set ns = namespace(found=false, n=0) %}{% for x in l %}{% if x == 'b' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }}",
     {"l": ["a", "b", "c"]}),
    ("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}{% if not a and b %}!{% endif %}{% if a or b %}?{% endif %}", {"a": False, "b": True}),
    ("{{ 'yes' if x else 'no' }} {{ 'y' if not x }}|{{ x or 'fallback' }} {{ x and 'z' }}", {"x": 0}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in d }} {{ 'q' not in d }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }}", {"d": {"k": 1}}),
    ("{{ '  pad  ' | trim }}|{{ 'MiXed' | upper }}{{ 'MiXed' | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello big-world (x)' | title }}|{{ l | length }}{{ 'héllo' | length }}{{ d | length }}",
     {"l": [1, 2, 3], "d": {"a": 1}}),
    ("{{ y | default('dflt') }} {{ '' | default('e', true) }} {{ 0 | default(5) }} {{ l | join(', ') }} {{ l | first }} {{ l | last }} {{ l | reverse | list }}",
     {"l": ["a", "b", "c"]}),
    ("{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\\n</s>' | tojson }}|{{ [1.0, 2, none, true] | tojson }}|{{ d | tojson(sort_keys=true) }}",
     {"d": {"b": [1, {"c": "x"}], "a": {}, "e": []}}),
    ("{{ '  x y  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ ' a'.lstrip() }}|{{ 'a '.rstrip() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a-b-c'.split('-', 1) }}",
     {}),
    ("{{ 'aXbXc'.replace('X', '--') }}|{{ 'hello world'.title() }}|{{ 'ABC'.lower() }}{{ 'abc'.upper() }}|{{ 'hello'.capitalize() }}|{{ ', '.join(['a', 'b']) }}|{{ 'abc'.find('c') }}",
     {}),
    ("{{ m['role'] }} {{ m.role }} {{ m.missing is defined }} {{ m.get('role') }} {{ m.get('x', 'dx') }} {{ m.keys() | list }} {{ m.values() | list }}",
     {"m": {"role": "user", "content": "hi"}}),
    ("{%- if true -%}\n  a  \n{%- endif -%}\n  b\n  {% if true %}\n  c\n  {% endif %}\n{# comment #}\n  {#- c2 -#}  d\n{{ 'e' }}\n{{- 'f' -}}\n  g", {}),
    ("line1\n    {% for x in [1, 2] %}\n    item {{ x }}\n    {% endfor %}\nend\n", {}),
    ("{% set s %}captured {{ 1 + 1 }}{% endset %}[{{ s }}]{{ s | length }}", {}),
    ("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {% for i in range(2) %}{{ i }}{% endfor %} {{ (1, 2) }} {{ [1, 2] + [3] }}", {}),
    ("{{ l | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }}|{{ l | rejectattr('role', 'equalto', 'user') | list | length }}|{{ l | map(attribute='role') | list }}",
     {"l": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}, {"role": "user", "content": "c"}]}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby(3) }} {{ 1 is number }} {{ 1.5 is float }} {{ 2 is integer }} {{ x is sameas false }} {{ l is iterable }}",
     {"x": False, "l": []}),
    ("{{ '%s' }} {{ \"it's\" }} {{ 'tab\\there' }} {{ 'uni\\u00e9' }} {{ 'a' 'b' }}", {}),
    ("{{ raise_exception('custom failure: ' ~ n) }}", {"n": 3}),
    ("{{ x.y.z }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{% for x in l %}{% for y in l %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}", {"l": [1, 2]}),
    ("{{ messages[0]['content'][0] }}{{ messages | length }}{{ (messages | last).role }}{{ messages[-1]['role'] == 'user' }}",
     {"messages": [{"role": "system", "content": "xyz"}, {"role": "user", "content": "q"}]}),
    ("{%- for m in messages -%}\n{{- m.role | upper }}: {{ m.content -}}\n{%- if not loop.last %}\n{% endif -%}\n{%- endfor %}",
     {"messages": [{"role": "a", "content": "1"}, {"role": "b", "content": "2"}]}),
    ("{{ 10 | float }} {{ '42' | int }} {{ 'x' | int }} {{ -3 | abs }} {{ 5 | string ~ '!' }} {{ 2.5 | int }}", {}),
    ("{{ d.a.b }} {{ d['a']['b'] }} {{ (d.a).b }} {{ d.a.b.c is defined }}", {"d": {"a": {"b": [1, 2]}}}),
    ("{{ 1 ** 10 }} {{ (-1) ** 3 }} {{ 3 ** 3 }} {{ 2 ** 62 }} {{ [1, 2, 3][1::9223372036854775807] }} "
     "{{ 9223372036854775807 // -2 }} {{ 9223372036854775807 % -2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -3 | abs }}", {}),
]


def main():
    cases = []
    for name, spec in TEMPLATES.items():
        for conv_name, messages in CONVERSATIONS.items():
            if conv_name == "tool_call" and name != "qwen2.5":
                continue
            for add in (True, False):
                tools = TOOLS if conv_name == "tool_call" else None
                variables = {"messages": messages, "tools": tools, "documents": None,
                             "add_generation_prompt": add, "bos_token": spec["bos_token"],
                             "eos_token": spec["eos_token"]}
                case = {"template": name, "conversation": conv_name, "add_generation_prompt": add,
                        "tools": tools is not None}
                case.update(render(spec["template"], variables))
                cases.append(case)
    jinja_cases = []
    for template, variables in JINJA:
        case = {"template": template, "variables": variables}
        try:
            case["expected"] = _compile_jinja_template(template).render(**variables)
        except jinja2.exceptions.UndefinedError as e:
            case["error"] = "undefined: " + str(e)
        except jinja2.exceptions.TemplateError as e:
            case["error"] = str(e)
        except Exception as e:  # Python's own errors (ZeroDivisionError, TypeError): just "fails"
            case["error"] = type(e).__name__
        jinja_cases.append(case)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "generator": f"tools/chat/make_chat_fixtures.py (jinja2 {jinja2.__version__})",
        "templates": TEMPLATES, "tools": TOOLS, "conversations": CONVERSATIONS,
        "cases": cases, "jinja_cases": jinja_cases}, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} chat cases, {len(jinja_cases)} jinja cases -> {OUT}")


if __name__ == "__main__":
    main()
