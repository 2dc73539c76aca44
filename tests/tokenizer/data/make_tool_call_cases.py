#!/usr/bin/python3
"""Writes tool_call_cases.json: the tool-call parse cases of llama.cpp's tests/test-chat.cpp at c392e50
(test_template_output_parsers), as data. Each case: the template file (in templates/), the tools, the
expected message (content, reasoning_content, tool_calls [{name, arguments (JSON text), id}]),
and either the model output to parse ("input", llama.cpp's common_chat_parse cases) or the delta
llama.cpp's test_templates expects the template to render for that message ("delta": rendered
[user] + generation prompt vs [user, message], the common prefix removed, end tokens cut at the last
one) - the delta is then parsed back to the message. Written by hand from the file; regenerate with
    /usr/bin/python3 tests/tokenizer/data/make_tool_call_cases.py > tests/tokenizer/data/tool_call_cases.json
"""
import json
import sys

special = {"type": "function", "function": {"name": "special_function", "description": "I'm special", "parameters": {
    "type": "object", "properties": {"arg1": {"type": "integer", "description": "The arg."}}, "required": ["arg1"]}}}
python = {"type": "function", "function": {"name": "python", "description": "an ipython interpreter", "parameters": {
    "type": "object", "properties": {"code": {"type": "string", "description": "Python code to execute."}},
    "required": ["code"]}}}
code_interpreter = {"type": "function", "function": {"name": "code_interpreter", "description": "an ipython interpreter",
    "parameters": {"type": "object", "properties": {"code": {"type": "string", "description": "Python code to execute."}},
                   "required": ["code"]}}}
tools = [special, python]
llama_3_1_tools = [special, code_interpreter]


def msg(content="", calls=(), reasoning=""):
    return {"content": content, "reasoning_content": reasoning,
            "tool_calls": [{"name": n, "arguments": a, "id": i} for n, a, i in calls]}


assist = msg("Hello, world!\nWhat's up?")
assist_thoughts = msg("Hello, world!\nWhat's up?", reasoning="I'm thinking")
assist_thoughts_unparsed_think = msg("<think>I'm thinking</think>Hello, world!\nWhat's up?")
assist_thoughts_unparsed_r7b = msg("<|START_THINKING|>I'm thinking<|END_THINKING|>Hello, world!\nWhat's up?")
call = msg(calls=[("special_function", "{\"arg1\": 1}", "")])
call_idx = msg(calls=[("special_function", "{\"arg1\": 1}", "0")])
call_id = msg(calls=[("special_function", "{\"arg1\": 1}", "123456789")])
call_python = msg(calls=[("python", "{\"code\": \"print('hey')\"}", "")])
call_code_interpreter = msg(calls=[("code_interpreter", "{\"code\": \"print('hey')\"}", "")])
call_thoughts = msg(calls=[("special_function", "{\"arg1\": 1}", "")], reasoning="I'm\nthinking")
call_thoughts_unparsed = msg("<think>I'm\nthinking</think>", calls=[("special_function", "{\"arg1\": 1}", "")])

R7B = "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja"
DSL = "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja"
DSR = "llama-cpp-deepseek-r1.jinja"
ds_call = ("<think>I'm\nthinking</think>\n\n"
           "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n"
           "```json\n{\"arg1\": 1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
cases = [
    # common_chat_parse cases: (template, input, extract_reasoning, expected)
    {"template": R7B, "input": "Hello, world!\nWhat's up?", "expected": assist},
    {"template": R7B, "input": "Hello, world!\nWhat's up?<|END_RESPONSE|>", "expected": assist},
    {"template": R7B, "input": "<|START_RESPONSE|>Hello, world!\nWhat's up?<|END_RESPONSE|>", "expected": assist},
    {"template": R7B, "input": "<|START_THINKING|>I'm thinking<|END_THINKING|><|START_RESPONSE|>Hello, world!\nWhat's up?<|END_RESPONSE|>",
     "expected": assist_thoughts_unparsed_r7b},
    {"template": R7B, "input": "<|START_THINKING|>I'm thinking<|END_THINKING|>Hello, world!\nWhat's up?<|END_RESPONSE|>",
     "expected": assist_thoughts_unparsed_r7b},
    {"template": R7B, "extract_reasoning": True,
     "input": "<|START_THINKING|>I'm thinking<|END_THINKING|><|START_RESPONSE|>Hello, world!\nWhat's up?<|END_RESPONSE|>",
     "expected": assist_thoughts},
    {"template": DSL, "input": "<think>I'm thinking</think>Hello, world!\nWhat's up?", "expected": assist_thoughts_unparsed_think},
    {"template": DSL, "extract_reasoning": True, "input": "<think>I'm thinking</think>Hello, world!\nWhat's up?", "expected": assist_thoughts},
    {"template": DSL, "extract_reasoning": True, "input": "I'm thinking</think>Hello, world!\nWhat's up?", "expected": assist_thoughts},
    {"template": DSR, "input": "<think>I'm thinking</think>Hello, world!\nWhat's up?", "expected": assist_thoughts_unparsed_think},
    {"template": DSR, "extract_reasoning": True, "input": "<think>I'm thinking</think>Hello, world!\nWhat's up?", "expected": assist_thoughts},
    {"template": DSR, "input": ds_call, "expected": call_thoughts_unparsed},
    {"template": DSR, "extract_reasoning": True, "input": ds_call, "expected": call_thoughts},
    # test_templates cases: (template, tools, message, expected delta)
    {"template": R7B, "tools": tools, "expected": call_idx,
     "delta": "<|START_THINKING|><|END_THINKING|><|START_ACTION|>[\n"
              "    {\"tool_call_id\": \"0\", \"tool_name\": \"special_function\", \"parameters\": {\"arg1\": 1}}\n"
              "]<|END_ACTION|>", "end_tokens": ["<|END_OF_TURN_TOKEN|>"]},
    {"template": R7B, "tools": tools, "expected": assist,
     "delta": "<|START_RESPONSE|>Hello, world!\nWhat's up?<|END_RESPONSE|>", "end_tokens": ["<|END_OF_TURN_TOKEN|>"]},
    {"template": "mistralai-Mistral-Nemo-Instruct-2407.jinja", "tools": tools, "expected": assist,
     "delta": "Hello, world!\nWhat's up?", "end_tokens": ["</s>"]},
    {"template": "mistralai-Mistral-Nemo-Instruct-2407.jinja", "tools": tools, "expected": call_id,
     "delta": "[TOOL_CALLS][{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}, \"id\": \"123456789\"}]",
     "end_tokens": ["</s>"]},
    {"template": "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "tools": tools, "expected": assist,
     "delta": "Hello, world!\nWhat's up?", "end_tokens": ["<|im_end|>"]},
    {"template": "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "tools": tools, "expected": call,
     "delta": "<tool_call>\n{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}\n</tool_call>",
     "end_tokens": ["<|im_end|>"]},
    {"template": "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "tools": tools, "expected": call_python,
     "delta": "<tool_call>\n{\"name\": \"python\", \"arguments\": {\"code\": \"print('hey')\"}}\n</tool_call>",
     "end_tokens": ["<|im_end|>"]},
    {"template": "meta-llama-Llama-3.1-8B-Instruct.jinja", "tools": llama_3_1_tools, "expected": call_code_interpreter,
     "delta": "<|python_tag|>code_interpreter.call(code=\"print('hey')\")", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meta-llama-Llama-3.1-8B-Instruct.jinja", "tools": tools, "expected": call_python,
     "delta": "<|python_tag|>python.call(code=\"print('hey')\")", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meta-llama-Llama-3.1-8B-Instruct.jinja", "tools": tools, "expected": call,
     "delta": "{\"name\": \"special_function\", \"parameters\": {\"arg1\": 1}}", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meta-llama-Llama-3.2-3B-Instruct.jinja", "tools": tools, "expected": assist,
     "delta": "Hello, world!\nWhat's up?", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meta-llama-Llama-3.2-3B-Instruct.jinja", "tools": tools, "expected": call,
     "delta": "{\"name\": \"special_function\", \"parameters\": {\"arg1\": 1}}", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meetkai-functionary-medium-v3.1.jinja", "tools": tools, "expected": assist,
     "delta": "Hello, world!\nWhat's up?", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meetkai-functionary-medium-v3.1.jinja", "tools": tools, "expected": call,
     "delta": "<function=special_function>{\"arg1\": 1}</function>", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meetkai-functionary-medium-v3.2.jinja", "tools": [], "expected": assist,
     "delta": "all\nHello, world!\nWhat's up?", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "meetkai-functionary-medium-v3.2.jinja", "tools": tools, "expected": call,
     "delta": "special_function\n{\"arg1\": 1}", "end_tokens": ["<|eom_id|>", "<|eot_id|>"]},
    {"template": "fireworks-ai-llama-3-firefunction-v2.jinja", "tools": tools, "expected": assist,
     "delta": "Hello, world!\nWhat's up?", "end_tokens": ["<|eot_id|>"]},
    {"template": "fireworks-ai-llama-3-firefunction-v2.jinja", "tools": tools, "expected": call,
     "delta": " functools[{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}]", "end_tokens": ["<|eot_id|>"]},
    {"template": DSL, "tools": tools, "expected": assist, "delta": "Hello, world!\nWhat's up?",
     "end_tokens": ["<｜end▁of▁sentence｜>"]},
    {"template": DSR, "tools": tools, "expected": assist, "delta": "Hello, world!\nWhat's up?",
     "end_tokens": ["<｜end▁of▁sentence｜>"]},
    {"template": DSR, "tools": tools, "expected": call,
     "delta": "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n"
              "```json\n{\"arg1\": 1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
     "end_tokens": ["<｜end▁of▁sentence｜>"]},
]
json.dump({"source": "llama.cpp c392e50 tests/test-chat.cpp (test_template_output_parsers)",
           "command": "/usr/bin/python3 tests/tokenizer/data/make_tool_call_cases.py",
           "user_message": {"role": "user", "content": "Hello, world!"},
           "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)
print()
