// `g2c template (--model F | --template-file F [--bos S] [--eos S]) --messages FILE.json
//  [--no-generation-prompt] [--date YYYY-MM-DD]`: prints exactly the text the chat template makes of
// a conversation (what Hugging Face's apply_chat_template(tokenize=False) returns; BOS as text when
// the template writes it). FILE.json: {"messages": [...], "tools": [...]} in Hugging Face's shapes,
// tool-call arguments as objects. With --model and tools, a GGUF's tokenizer.chat_template.tool_use
// is used when it has one. --date fixes strftime_now's date (default: now).
// `g2c template --template-file F --write-gguf IN.gguf -o OUT.gguf` writes a copy of IN whose
// tokenizer.chat_template is F (llama.cpp's gguf-new-metadata does the same): how the tests give a
// tiny model a real family's template.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <span>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "g2c/core/error.hpp"
#include "g2c/gguf/gguf.hpp"
#include "g2c/tokenizer/chat_template.hpp"
#include "g2c/tokenizer/jinja.hpp"

namespace g2c::app {
namespace {

struct TemplateOptions {
  std::string model, template_file, messages, bos, eos, date, write_gguf, output;
  bool no_generation_prompt = false;
};

std::string slurp(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(std::string("cannot open ") + what + " '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

long long parse_date(const std::string& d) {
  std::tm tm{};
  int y = 0, m = 0, day = 0;
  char tail = 0;
  if (std::sscanf(d.c_str(), "%4d-%2d-%2d%c", &y, &m, &day, &tail) != 3 || m < 1 || m > 12 || day < 1 || day > 31)
    throw InvalidArgument("--date '" + d + "': expected YYYY-MM-DD");
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = day;
  return static_cast<long long>(timegm(&tm));
}

void write_gguf(const TemplateOptions& o) {
  if (o.template_file.empty() || o.output.empty())
    throw InvalidArgument("--write-gguf needs --template-file and -o/--output");
  const std::string source = slurp(o.template_file, "--template-file");
  const auto in = gguf::File::open(resolve_model_path(o.write_gguf));
  gguf::Writer w = gguf::Writer::copy_of(*in);
  w.set("tokenizer.chat_template", gguf::Value::str(source));
  w.write(o.output);
}

void run_template(const TemplateOptions& o) {
  if (!o.write_gguf.empty()) return write_gguf(o);
  if (o.messages.empty()) throw InvalidArgument("--messages is required");
  if (o.model.empty() == o.template_file.empty()) throw InvalidArgument("give one of --model and --template-file");
  nlohmann::ordered_json in;
  try {
    in = nlohmann::ordered_json::parse(slurp(o.messages, "--messages file"));
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("--messages '" + o.messages + "': not JSON: " + e.what());
  }
  if (!in.is_object() || !in.contains("messages") || !in["messages"].is_array())
    throw InvalidArgument("--messages '" + o.messages + "': expected {\"messages\": [...], \"tools\": [...]}");
  tokenizer::ChatRequest req;
  req.messages = in["messages"];
  if (in.contains("tools") && !in["tools"].is_null()) {
    if (!in["tools"].is_array()) throw InvalidArgument("--messages '" + o.messages + "': \"tools\" must be an array");
    req.tools = in["tools"];
  }
  req.add_generation_prompt = !o.no_generation_prompt;
  if (!o.date.empty()) req.now_unix = parse_date(o.date);
  std::string source;
  if (!o.model.empty()) {
    const auto f = gguf::File::open(resolve_model_path(o.model));
    const tokenizer::GgufChat c = tokenizer::read_gguf_chat(*f);
    source = !req.tools.is_null() && !c.tool_use_template.empty() ? c.tool_use_template : c.chat_template;
    req.bos_token = c.bos_token;
    req.eos_token = c.eos_token;
    if (source.empty())
      std::fprintf(stderr, "warning: %s has no tokenizer.chat_template: plain fallback\n", o.model.c_str());
  } else {
    source = slurp(o.template_file, "--template-file");
    req.bos_token = o.bos;
    req.eos_token = o.eos;
    if (source.empty()) throw InvalidArgument("--template-file '" + o.template_file + "' is empty");
  }
  const tokenizer::ChatTemplate t = tokenizer::detect_chat_template(source);
  std::string out;
  try {
    out = tokenizer::render_chat(t, req);
  } catch (const tokenizer::jinja::TemplateRaised& e) {
    throw InvalidArgument(std::string("the chat template refuses this conversation: ") + e.what());
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void register_template(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  CLI::App* c = app.add_subcommand("template", "print the prompt a chat template makes of a conversation");
  c->add_option("-m,--model", o->model, "GGUF model whose tokenizer.chat_template to use");
  c->add_option("--template-file", o->template_file, "a Jinja chat template file");
  c->add_option("--bos", o->bos, "bos_token text (with --template-file)");
  c->add_option("--eos", o->eos, "eos_token text (with --template-file)");
  c->add_option("--messages", o->messages, "JSON file: {\"messages\": [...], \"tools\": [...]}");
  c->add_flag("--no-generation-prompt", o->no_generation_prompt, "add_generation_prompt = false");
  c->add_option("--date", o->date, "the date strftime_now sees, YYYY-MM-DD (default: today)");
  c->add_option("--write-gguf", o->write_gguf, "instead: copy this GGUF with --template-file as its chat template");
  c->add_option("-o,--output", o->output, "the GGUF --write-gguf writes");
  c->callback([o] { run_template(*o); });
}

}  // namespace g2c::app
