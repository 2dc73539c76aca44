#include "g2c/tokenizer/chat_template.hpp"

#include <gtest/gtest.h>

namespace g2c::tokenizer {
namespace {

// The conversation of llama.cpp's tests/test-chat-template.cpp; the expected strings marked
// "llama.cpp golden" are copied from that file's expected_output (rendered by llama.cpp, with BOS
// left to the tokenizer), so they check us against another implementation.
std::vector<ChatTurn> conversation() {
  return {{"system", "You are a helpful assistant"},
          {"user", "Hello"},
          {"assistant", "Hi there"},
          {"user", "Who are you"},
          {"assistant", "   I am an assistant   "},
          {"user", "Another question"}};
}

// GGUF tokenizer.chat_template strings as published with the models (the Jinja source).
const char* kChatmlJinja =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const char* kLlama3Jinja =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}";
const char* kMistralV02Jinja =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are "
    "supported!') }}{% endif %}{% endfor %}";
const char* kFusionNetJinja =
    "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 "
    "-%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- "
    "messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- "
    "'[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == "
    "'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif %}\n{% endfor %}";
// bofenghuang/vigogne-2-70b-chat, abridged (its French default-system branch removed).
const char* kVigogneJinja =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = "
    "false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set "
    "content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' "
    "}}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
// HuggingFaceH4/zephyr-7b-beta tokenizer_config.json chat_template.
const char* kZephyrJinja =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% "
    "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
    "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
// Phi-3: "<|user|>" like zephyr, but "<|end|>" turns; not one of ours, so it must fall back to plain.
const char* kPhi3Jinja =
    "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + "
    "'<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% "
    "endif %}";

TEST(ChatTemplate, ChatmlMatchesLlamaCppGolden) {
  // llama.cpp golden (teknium/OpenHermes-2.5-Mistral-7B).
  const std::string expected =
      "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>"
      "assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an "
      "assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(render_chat(kChatmlJinja, conversation(), true), expected);
  EXPECT_EQ(render_chat("chatml", conversation(), true), expected);
}

TEST(ChatTemplate, Llama3MatchesLlamaCppGolden) {
  // llama.cpp golden (Llama 3): content is trimmed.
  const std::string expected =
      "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|"
      "end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi "
      "there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are "
      "you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an "
      "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
      "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(render_chat(kLlama3Jinja, conversation(), true), expected);
  EXPECT_EQ(detect_chat_template(kLlama3Jinja).family, ChatFamily::kLlama3);
}

// The hand-written renderer a template falls back to when its Jinja does not parse (the Jinja path
// itself is checked against jinja2 in chat_template_jinja_test.cpp).
ChatTemplate fallback(std::string_view src) {
  ChatTemplate t = detect_chat_template(src);
  t.jinja.reset();
  return t;
}

TEST(ChatTemplate, Llama2VariantsMatchLlamaCppGoldens) {
  // llama.cpp goldens (its non-Jinja renderers) for three llama2-family templates; the variant is read
  // off the template text, for the fallback.
  EXPECT_EQ(render_chat(fallback(kMistralV02Jinja), conversation(), true),
            "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
            "assistant   </s>[INST] Another question [/INST]");
  EXPECT_EQ(render_chat(fallback(kFusionNetJinja), conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are "
            "you [/INST]    I am an assistant    </s><s>[INST] Another question [/INST]");
  EXPECT_EQ(render_chat(fallback(kVigogneJinja), conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>[INST] Who are you "
            "[/INST] I am an assistant </s>[INST] Another question [/INST]");
}

TEST(ChatTemplate, Llama2ByNameIsMetaLayout) {
  // Hand-written from Meta's Llama-2-chat Jinja (bos before every later [INST], strip, spaces around
  // the answer), minus the first BOS which the tokenizer adds.
  EXPECT_EQ(render_chat("llama2", conversation(), true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are "
            "you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
}

TEST(ChatTemplate, ZephyrHandWritten) {
  // Rendered by hand from the Jinja above with HF's trim_blocks/lstrip_blocks and eos_token "</s>":
  // the newline after each {{ ... }} survives, those after {% ... %} do not.
  const std::string expected =
      "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n<|user|>\nWho "
      "are you</s>\n<|assistant|>\n   I am an assistant   </s>\n<|user|>\nAnother question</s>\n<|assistant|>\n";
  EXPECT_EQ(render_chat(fallback(kZephyrJinja), conversation(), true), expected);
  EXPECT_EQ(render_chat("zephyr", conversation(), true), expected);
  // The Jinja itself, with eos_token "</s>", writes the same.
  ChatRequest req;
  for (const ChatTurn& t : conversation()) req.messages.push_back({{"role", t.role}, {"content", t.content}});
  req.eos_token = "</s>";
  EXPECT_EQ(render_chat(detect_chat_template(kZephyrJinja), req), expected);
  // StableLM-Zephyr spells its end of turn <|endoftext|>.
  std::string stablelm = std::string(kZephyrJinja) + "{# <|endoftext|> #}";
  EXPECT_EQ(detect_chat_template(stablelm).zephyr_eos, "<|endoftext|>");
  EXPECT_EQ(render_chat(fallback(stablelm), {{"user", "Hi"}}, true), "<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
}

TEST(ChatTemplate, GenerationPromptSwitch) {
  std::vector<ChatTurn> one = {{"user", "Hi"}};
  EXPECT_EQ(render_chat("chatml", one, false), "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(render_chat("llama3", one, false), "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(render_chat("zephyr", one, false), "<|user|>\nHi</s>\n");
  EXPECT_EQ(render_chat("plain", one, false), "User: Hi\n\n");
}

TEST(ChatTemplate, PlainFallbackForUnknownTemplates) {
  std::vector<ChatTurn> msgs = {
      {"system", "Be brief."}, {"user", "Weather in Paris?"}, {"assistant", ""}, {"tool", "11 degrees", "get_weather"}};
  const std::string expected =
      "System: Be brief.\n\nUser: Weather in Paris?\n\nAssistant: \n\nTool (get_weather): 11 degrees\n\nAssistant:";
  EXPECT_EQ(render_chat("", msgs, true), expected);
  // This Phi-3 template builds its markers ('<|' + role + '|>'), so no marker matches: "other",
  // rendered by its Jinja; the fallback of an unrecognised template is plain.
  EXPECT_EQ(detect_chat_template(kPhi3Jinja).family, ChatFamily::kOther);
  EXPECT_EQ(render_chat(fallback(kPhi3Jinja), msgs, true), expected);
  EXPECT_EQ(detect_chat_template("{{ messages }}").family, ChatFamily::kOther);
  EXPECT_EQ(render_chat(fallback("{{ messages }}"), msgs, true), expected);
  // An unknown template that g2c cannot parse: plain, with the reason kept.
  const ChatTemplate bad = detect_chat_template("{% call x() %}{% endcall %}");
  EXPECT_FALSE(bad.jinja);
  EXPECT_EQ(bad.family, ChatFamily::kPlain);
  EXPECT_EQ(render_chat(bad, msgs, true), expected);
}

TEST(ChatTemplate, DetectsFamiliesFromMarkers) {
  EXPECT_EQ(detect_chat_template(kChatmlJinja).family, ChatFamily::kChatml);
  EXPECT_EQ(detect_chat_template(kZephyrJinja).family, ChatFamily::kZephyr);
  ChatTemplate m = detect_chat_template(kMistralV02Jinja);
  EXPECT_EQ(m.family, ChatFamily::kLlama2);
  EXPECT_FALSE(m.llama2_system);
  EXPECT_FALSE(m.llama2_space_around);
  EXPECT_STREQ(family_name(detect_chat_template("llama3").family), "llama3");
}

}  // namespace
}  // namespace g2c::tokenizer
