#pragma once
// Tokenizers read from a GGUF (or a llama2.c tokenizer.bin), producing the ids llama.cpp c392e50
// produces for the same file: SentencePiece-style BPE by score ("llama"), byte-level BPE with the
// pre-tokenizer named by tokenizer.ggml.pre ("gpt2"), WordPiece ("bert").
//
// One Tokenizer per model, immutable after construction; every call keeps its scratch on its own
// stack, so any number of threads may encode/decode with one Tokenizer without locks.
//
// Input that is not well-formed (documented behaviour, tested in tests/tokenizer):
//  * invalid UTF-8: SPM splits by lead byte and emits unknown bytes as <0xNN> byte tokens (or the unk
//    id when the vocab has no byte tokens); BPE and WordPiece first replace each byte where no
//    well-formed sequence starts with U+FFFD, as llama.cpp does (so BPE yields the ids of "\xEF\xBF\xBD");
//  * NUL bytes are ordinary characters (std::string_view carries them);
//  * the empty string gives no ids (plus BOS/EOS when add_special asks for them);
//  * ids outside [0, n_vocab) passed to decode/piece throw InvalidArgument.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "g2c/tokenizer/unicode.hpp"

namespace g2c::gguf {
class File;
}

namespace g2c::tokenizer {

class PreTokenizer;

// tokenizer.ggml.token_type values (GGUF ids).
enum class TokenType : std::int32_t {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
};

// tokenizer.ggml.model values g2c implements.
enum class VocabType { SPM, BPE, WPM };
const char* vocab_type_name(VocabType t);  // "llama", "gpt2", "bert"

inline constexpr std::int32_t kNoToken = -1;

class Tokenizer {
 public:
  // Reads the tokenizer.ggml.* keys. Throws FormatError (missing/mismatched keys) or UnsupportedError
  // (a tokenizer model or pre value g2c does not implement), naming the file and key.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  // llama2.c tokenizer.bin (formats.md 4.4); the token count comes from the model header (0: read
  // records until the end of the file). Behaves as
  // the SPM vocabulary of the matching GGUF (stories260K.bin + tok512.bin == stories260K.gguf).
  static std::unique_ptr<Tokenizer> from_llama2c(const std::string& path, int vocab_size);

  ~Tokenizer();

  // Text -> ids. add_special: prepend BOS / append EOS as the model asks (add_bos/add_eos; for bert
  // always [CLS] ... [SEP]), like llama.cpp's add_special. parse_special: control and unknown-type
  // pieces written in the text ("<|im_end|>") become their single id; user-defined pieces are always
  // matched whole, as in llama.cpp.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Ids -> text. Pieces are concatenated and the bytes made valid UTF-8 (an ill-formed sequence
  // becomes U+FFFD). Control/unknown tokens render as nothing unless render_special. No space is
  // stripped and no clean-up is applied: decode(a ++ b) == decode(a) ++ decode(b) whenever the split
  // falls on a character boundary, which is what streaming needs.
  std::string decode(std::span<const std::int32_t> ids, bool render_special = false) const;

  // The bytes of one token as llama.cpp's token_to_piece(special=true) gives them: SPM "▁" -> " ",
  // <0xNN> -> that byte, byte-level BPE alphabet -> bytes, control/user-defined -> their text.
  // May be a fragment of a UTF-8 character.
  const std::string& piece(std::int32_t id) const;
  // The vocabulary string as stored in the file.
  const std::string& token_text(std::int32_t id) const;
  TokenType token_type(std::int32_t id) const;
  float score(std::int32_t id) const;
  // Id of an exact vocabulary string, kNoToken when absent.
  std::int32_t find(std::string_view text) const;

  int n_vocab() const { return static_cast<int>(tokens_.size()); }
  VocabType type() const { return type_; }
  const std::string& pre() const { return pre_; }  // pre-tokenizer name (BPE), "" otherwise
  std::int32_t bos_id() const { return bos_; }
  std::int32_t eos_id() const { return eos_; }
  std::int32_t eot_id() const { return eot_; }
  std::int32_t unk_id() const { return unk_; }
  std::int32_t sep_id() const { return sep_; }
  std::int32_t pad_id() const { return pad_; }
  std::int32_t mask_id() const { return mask_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // End of generation: eos, eot, eom, the FIM pad/rep/sep ids and pieces such as <|eot_id|>,
  // <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, <EOT> (llama.cpp's list).
  bool is_eog(std::int32_t id) const;
  const std::vector<std::int32_t>& eog_ids() const { return eog_; }

 private:
  struct Token {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::NORMAL;
    std::uint32_t attr = 0;  // kAttr* bits (type plus lstrip/rstrip)
  };
  struct Fragment {
    std::int32_t token;      // kNoToken for raw text
    std::size_t begin, end;  // raw text range
  };

  Tokenizer() = default;
  void finish_load(const std::string& model_name);
  void check_id(std::int32_t id) const;
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  std::int32_t byte_token(std::uint8_t byte) const;
  void encode_spm(std::string_view text, std::vector<std::int32_t>& out) const;
  void encode_spm_chunk(std::string_view text, std::vector<std::int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<std::int32_t>& out) const;
  void encode_wpm(std::string_view text, std::vector<std::int32_t>& out) const;
  struct BpeScratch;
  void bpe_word(std::string_view raw, std::string_view word, BpeScratch& scratch, std::vector<std::int32_t>& out) const;
  int bpe_rank(std::string_view left, std::string_view right, std::string& key) const;
  std::string make_piece(std::int32_t id) const;

  VocabType type_ = VocabType::SPM;
  std::string pre_;
  std::vector<Token> tokens_;
  std::unordered_map<std::string, std::int32_t> text_to_id_;
  std::unordered_map<std::string, int> merge_rank_;  // key: u32 length of left, left, right
  // The merges whose two parts are tokens, by (left id << 32 | right id): rank and the id of the
  // merged text (kNoToken if it is not a token). Same ranks as merge_rank_, without string hashing.
  struct MergeById {
    int rank;
    std::int32_t merged;
  };
  std::unordered_map<std::uint64_t, MergeById> merge_by_ids_;
  std::vector<std::int32_t> special_by_length_;  // control/user-defined/unknown ids, longest first
  std::vector<std::string> pieces_;              // piece(id) cache
  // SPM: characters that some token has right before a U+2581. A boundary before U+2581 whose left
  // neighbour is not in this set can never be merged across (see encode_spm).
  std::unordered_set<std::string> spm_joins_space_;
  std::vector<std::int32_t> eog_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::int32_t byte_tokens_[256];
  int max_token_len_ = 0;
  bool ignore_merges_ = false;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  std::int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken, unk_ = kNoToken, sep_ = kNoToken,
               pad_ = kNoToken, mask_ = kNoToken;
  std::int32_t fim_pre_ = kNoToken, fim_suf_ = kNoToken, fim_mid_ = kNoToken, fim_pad_ = kNoToken, fim_rep_ = kNoToken,
               fim_sep_ = kNoToken;
  friend class StreamDecoder;
};

// Incremental detokenizer for streaming: push one id at a time; every returned chunk is valid UTF-8
// (bytes of an unfinished character are held back), and the concatenation of all chunks plus flush()
// equals tok.decode(all ids). Holds a reference to the tokenizer, which must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(tok), render_special_(render_special) {}
  std::string push(std::int32_t id);
  // Returns what is held back (as U+FFFD when it never completed) and resets.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool render_special_;
  Utf8Stream utf8_;
};

}  // namespace g2c::tokenizer
