// Language features of the chat-template engine. Expected outputs were produced by HF's
// Jinja2 environment (trim_blocks, lstrip_blocks, HF tojson) for the same template and context.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/check.h"
#include "tokenizer/chat_template.h"

namespace wideserve::tokenizer {
namespace {

using nlohmann::ordered_json;

std::string render(std::string_view tmpl, const ordered_json& ctx = ordered_json::object()) {
  return ChatTemplate(tmpl).render(ctx);
}

// Message of the error thrown by compiling and rendering, or "" when it succeeds.
std::string error_of(std::string_view tmpl, const ordered_json& ctx = ordered_json::object(),
                     jinja::RenderLimits limits = {}) {
  try {
    ChatTemplate(tmpl, limits).render(ctx);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

struct Case {
  const char* name;
  const char* tmpl;
  const char* context;
  const char* expected;
};

const Case kCases[] = {
    {"text_passthrough", "hello\nworld\n", "{}", "hello\nworld"},
    {"trailing_newline_kept_once", "a\n\n", "{}", "a\n"},
    {"crlf_normalized", "a\r\nb\rc", "{}", "a\nb\nc"},
    {"print_scalars", "{{ 1 }} {{ 1.5 }} {{ true }} {{ none }} {{ 'x' }} {{ u }}|", "{}",
     "1 1.5 True None x |"},
    {"float_repr",
     "{{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 123456789.123 }} {{ -0.0 }} {{ 2.5e-4 }}",
     "{}", "1.0 1e+16 1e-05 0.30000000000000004 123456789.123 -0.0 0.00025"},
    {"int_arith",
     "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 3 * 'ab' "
     "}} {{ [1] * 3 }}",
     "{}", "3 -4 2 3.5 1024 0.5 ababab [1, 1, 1]"},
    {"precedence",
     "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 'a' ~ 2 * 3 }} {{ not 1 == 2 }}", "{}",
     "7 9 4 a6 True"},
    {"string_concat", "{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none ~ u }}", "{}", "ab a1None"},
    {"compare_chain",
     "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ true "
     "== 1 }}",
     "{}", "True False True True True True"},
    {"in_operator",
     "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in d }} {{ 'z' not in d }} {{ 1 in u }}",
     "{\"d\": {\"k\": 1}}", "True True True True False"},
    {"and_or_values", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or [] }}", "{}",
     "x b |[]"},
    {"inline_if", "{{ 'y' if x else 'n' }} {{ 'y' if not x else 'n' }} [{{ 'y' if false }}]",
     "{\"x\": 1}", "y n []"},
    {"literals",
     "{{ [1, 'a', none, true] }} {{ (1,) }} {{ (1, 2) }} {{ () }} {{ {'a': 1, 'b': [2]} }} {{ "
     "'it''s' }}",
     "{}", "[1, 'a', None, True] (1,) (1, 2) () {'a': 1, 'b': [2]} its"},
    {"string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\\x41\\u00e9' }}|{{ \"q\\\"q\" }}", "{}",
     "a\nb\tc\\d'eAé|q\"q"},
    {"repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', '\\n'] }}", "{}",
     "[\"it's\", 'say \"hi\"', 'both \\' \"', '\\n']"},
    {"subscript_attr",
     "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ l[0] }} {{ l[-1] }} {{ l.1 }} [{{ l[9] }}] [{{ d.zz "
     "}}]",
     "{\"d\": {\"a\": 1, \"b\": {\"c\": 2}}, \"l\": [10, 20]}", "1 1 2 10 20 20 [] []"},
    {"dict_method_vs_key",
     "{{ d['items'] }} {{ d.items() | list }} {{ d.get('items') }} {{ d.get('no', 5) }}",
     "{\"d\": {\"items\": 1}}", "1 [('items', 1)] 1 5"},
    {"slicing",
     "{{ s[1:3] }} {{ s[::-1] }} {{ s[-2:] }} {{ s[:10] }} {{ l[1:] }} {{ l[::2] }} {{ l[:-1] }} "
     "{{ u8[1:3] }}",
     "{\"s\": \"hello\", \"l\": [1, 2, 3, 4], \"u8\": \"héllo\"}",
     "el olleh lo hello [2, 3, 4] [1, 3] [1, 2, 3] él"},
    {"if_elif_else",
     "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% endif %},{% "
     "endfor %}",
     "{}", "one,two,other,"},
    {"for_loop_vars",
     "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 "
     "}}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('o', 'e') }};{% endfor %}",
     "{}", "1032TrueFalse3o;2121FalseFalse3e;3210FalseTrue3o;"},
    {"for_prev_next",
     "{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", "{}",
     "-2;1-3;2-;"},
    {"for_else",
     "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in u %}x{% else %}undef{% endfor %}",
     "{}", "emptyundef"},
    {"for_filter",
     "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", "{}",
     "1,3,5,7,9"},
    {"for_dict_items",
     "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
     "{\"d\": {\"z\": 1, \"a\": 2}}", "z=1;a=2;za"},
    {"for_tuple_unpack", "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}", "{}", "37"},
    {"loop_scoping",
     "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i + 10 %}{{ x }},{% endfor %}{{ x }}",
     "{}", "010,011,012,0"},
    {"if_scoping", "{% if true %}{% set z = 3 %}{% endif %}{{ z }}", "{}", "3"},
    {"break_continue",
     "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% "
     "endif %}{{ i }}{% endfor %}",
     "{}", "023"},
    {"nested_loops",
     "{% for i in range(2) %}{% for j in range(2) %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ "
     "loop.index }}|{% endfor %}",
     "{}", "100 201 1|110 211 2|"},
    {"namespace",
     "{% set ns = namespace(a=1, items=[]) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% "
     "set ns.items = ns.items + [i] %}{% endfor %}{{ ns.a }} {{ ns.items }}",
     "{}", "4 [0, 1, 2]"},
    {"set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", "{}", "12(1, 2)"},
    {"block_set", "{% set x %}A{{ 1 + 1 }}B{% endset %}[{{ x }}]", "{}", "[A2B]"},
    {"macro_defaults",
     "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ "
     "greet('b', '\?') }} {{ greet(punct='.', name='c') }}",
     "{}", "Hi a! Hi b\? Hi c."},
    {"macro_recursion",
     "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1) | int) }}{% endif %}{% "
     "endmacro %}{{ fact(5) }}",
     "{}", "120"},
    {"macro_sees_globals",
     "{% set g = 'G' %}{% macro m() %}{{ g }}{{ bos }}{% endmacro %}{{ m() }}",
     "{\"bos\": \"<s>\"}", "G<s>"},
    {"ws_control", "a  {%- if true -%}  b  {%- endif -%}  c {{- ' d ' -}} e", "{}", "abc d e"},
    {"trim_lstrip_blocks",
     "<ul>\n  {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n", "{}",
     "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>"},
    {"plus_modifiers", "x\n  {%+ if true %}\ny{% endif +%}\nz", "{}", "x\n  y\nz"},
    {"comments", "a {# comment #} b\n  {# line #}\nc {#- strip -#} d", "{}", "a  b\ncd"},
    {"raw_block", "{% raw %}{{ not rendered }}{% endraw %}", "{}", "{{ not rendered }}"},
    {"generation_block", "a{% generation %}b{{ 1 }}{% endgeneration %}c", "{}", "ab1c"},
    {"filters_string",
     "{{ '  x y  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'hello world' | upper }} {{ 'HeLLo' | "
     "lower }} {{ 'hello WORLD' | capitalize }} {{ 'hello wORLD-foo(bar' | title }} {{ 'aaa' | "
     "replace('a', 'b', 2) }} {{ 'abc' | reverse }} {{ 'a b c' | wordcount }} {{ 'x' | center(5) "
     "}}|",
     "{}", "x y|hi|HELLO WORLD hello Hello world Hello World-Foo(Bar bba cba 3   x  |"},
    {"filter_default",
     "{{ u | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | "
     "d('n') }} {{ 0 | d(5, boolean=true) }}",
     "{}", "d  d None 5"},
    {"filter_length",
     "{{ 'héllo' | length }} {{ [1, 2] | count }} {{ d | length }} {{ u | length }}",
     "{\"d\": {\"a\": 1}}", "5 2 1 0"},
    {"filter_join_map",
     "{{ l | join(', ') }} {{ ms | map(attribute='r') | join('/') }} {{ ms | join(',', "
     "attribute='r') }} {{ l | map('string') | list }} {{ ms | map(attribute='zz', default='D') | "
     "list }}",
     "{\"l\": [1, 2, 3], \"ms\": [{\"r\": \"a\"}, {\"r\": \"b\"}]}",
     "1, 2, 3 a/b a,b ['1', '2', '3'] ['D', 'D']"},
    {"filter_select",
     "{{ l | select('odd') | list }} {{ l | reject('odd') | list }} {{ l | select | list }} {{ ms "
     "| selectattr('on') | map(attribute='n') | list }} {{ ms | rejectattr('n', 'equalto', 'b') | "
     "map(attribute='n') | list }}",
     "{\"l\": [0, 1, 2, 3], \"ms\": [{\"n\": \"a\", \"on\": true}, {\"n\": \"b\", \"on\": false}]}",
     "[1, 3] [0, 2] [1, 2, 3] ['a'] ['a']"},
    {"filter_items_list",
     "{{ d | items | list }} {{ d | list }} {{ 'ab' | list }} {{ d | dictsort }} {{ d | "
     "dictsort(by='value', reverse=true) }}",
     "{\"d\": {\"b\": 1, \"a\": 2}}",
     "[('b', 1), ('a', 2)] ['b', 'a'] ['a', 'b'] [('a', 2), ('b', 1)] [('a', 2), ('b', 1)]"},
    {"filter_first_last",
     "{{ [1, 2] | first }} {{ [1, 2] | last }} {{ 'abc' | first }} [{{ [] | first }}]", "{}",
     "1 2 a []"},
    {"filter_numbers",
     "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ "
     "'x' | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.1 | "
     "round(method='ceil') }} {{ -3 | abs }} {{ [1, 2.5] | sum }} {{ [3, 1, 2] | max }} {{ ['b', "
     "'A'] | min }}",
     "{}", "42 4 7 3 2.5 0.0 2.57 2.0 4.0 3.0 3 3.5 3 A"},
    {"filter_sort_unique",
     "{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | "
     "sort(case_sensitive=true) }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['a', 'A', 'b'] | "
     "unique | list }} {{ ms | sort(attribute='n') | map(attribute='n') | join }}",
     "{\"ms\": [{\"n\": 2}, {\"n\": 1}]}",
     "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] ['a', 'b'] 12"},
    {"filter_string_escape",
     "{{ [1, 'a'] | string }} {{ '<a href=\"x\">&\\'' | e }} {{ 'x' | safe }}", "{}",
     "[1, 'a'] &lt;a href=&#34;x&#34;&gt;&amp;&#39; x"},
    {"filter_indent",
     "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | "
     "indent(width='> ', blank=true) }}",
     "{}", "a\n    b\n\n    c|  a\n  b|a\n> \n> b"},
    {"tojson_basic", "{{ d | tojson }}",
     "{\"d\": {\"s\": \"é<>&'\\\"\\\\\\n\\t \177\\u0001\", \"n\": [1, 2.5, true, null, {}, []], "
     "\"f\": 1e+20}}",
     "{\"s\": \"é<>&'\\\"\\\\\\n\\t \177\\u0001\", \"n\": [1, 2.5, true, null, {}, []], \"f\": "
     "1e+20}"},
    {"tojson_indent",
     "{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ d | tojson(indent='\\t') }}",
     "{\"d\": {\"a\": [1, {\"b\": null}], \"c\": {}}}",
     "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {}\n}|[]|{\n\t\"a\": "
     "[\n\t\t1,\n\t\t{\n\t\t\t\"b\": null\n\t\t}\n\t],\n\t\"c\": {}\n}"},
    {"tojson_options",
     "{{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }} {{ 'é😀' | "
     "tojson(ensure_ascii=true) }} {{ 'é' | tojson }}",
     "{\"d\": {\"b\": 1, \"a\": [1, 2]}}",
     "{\"a\": [1, 2], \"b\": 1} {\"b\":1,\"a\":[1,2]} \"\\u00e9\\ud83d\\ude00\" \"é\""},
    {"tests",
     "{{ u is defined }} {{ u is undefined }} {{ none is none }} {{ 's' is string }} {{ d is "
     "mapping }} {{ l is iterable }} {{ 's' is iterable }} {{ 1 is iterable }} {{ l is sequence }} "
     "{{ 1 is number }} {{ 1.5 is number }} {{ true is boolean }} {{ true is true }} {{ 0 is false "
     "}} {{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ 3 is even }} {{ 'a' is equalto 'a' }} {{ 'a' "
     "is eq('b') }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'ab' is lower }} {{ 2 is in [1, 2] }} "
     "{{ x is not none }}",
     "{\"d\": {}, \"l\": [1], \"x\": 0}",
     "False True True True True True True False True True True True True False True True False "
     "True False True True True True True"},
    {"str_methods",
     "{{ ' a '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|{{ "
     "'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b "
     "c'.rsplit(' ', 1) }} {{ 'x\\ny\\r\\nz'.splitlines() }} {{ 'abc'.startswith('ab') }} {{ "
     "'abc'.endswith(('x', 'c')) }} {{ 'aXa'.replace('a', 'b') }} {{ 'héllo'.find('l') }} {{ "
     "'abc'.find('z') }} {{ 'banana'.count('an') }} {{ '-'.join(['a', 'b']) }} {{ 'hello "
     "world'.title() }} {{ 'hi'.upper() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ "
     "'5'.zfill(3) }} {{ 'x'.ljust(3, '.') }}|{{ 'a=b=c'.partition('=') }} {{ "
     "'prefix_x'.removeprefix('prefix_') }}",
     "{}",
     "a|a|a | a|['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] ['x', 'y', 'z'] True True "
     "bXb 2 -1 2 a-b Hello World HI True True 005 x..|('a', '=', 'b=c') x"},
    {"dict_methods",
     "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.get('a') }} {{ "
     "d.get('z') }}",
     "{\"d\": {\"a\": 1, \"b\": [2]}}", "['a', 'b'] [1, [2]] [('a', 1), ('b', [2])] 1 None"},
    {"list_methods", "{{ l.index(2) }} {{ l.count(1) }}", "{\"l\": [1, 2, 1]}", "1 2"},
    {"globals",
     "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, "
     "b='x') }} {{ namespace(a=1).a }}",
     "{}", "[0, 1, 2] [1, 3, 5] [5, 3, 1] {'a': 1, 'b': 'x'} 1"},
    {"undefined_behaviour",
     "[{{ u }}] {{ u | length }} {{ u | default('d') }} {{ u is defined }} {{ not u }} {% for x in "
     "u %}x{% endfor %} {{ u == u }} {{ d.missing is defined }} {{ none.x is defined }}",
     "{\"d\": {}}", "[] 0 d False True  True False False"},
    {"unicode_text",
     "{{ s | length }} {{ s[0] }} {{ s[-1] }} {{ s[1:3] }} {{ s | upper }} {{ s.split() }} {{ "
     "'　x '.strip() }}|",
     "{\"s\": \"日本語 👨‍👩‍👧 é\"}",
     "11 日 é 本語 日本語 👨‍👩‍👧 É ['日本語', '👨\\u200d👩\\u200d👧', "
     "'é'] "
     "x|"},
    {"print_containers", "{{ l }} {{ d }} {{ t }}",
     "{\"l\": [1, \"a\", null, true, 1.5, {\"k\": [1]}], \"d\": {\"a\": \"b\", \"c\": null}, "
     "\"t\": \"x\"}",
     "[1, 'a', None, True, 1.5, {'k': [1]}] {'a': 'b', 'c': None} x"},
    {"messages_like",
     "{% for m in messages %}<{{ m['role'] }}>{{ m.content | trim }}{% if not loop.last %}\n{% "
     "endif %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \" hi \"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}], \"add_generation_prompt\": true}",
     "<user>hi<assistant>yo<assistant>"},
    {"for_else_after_continue",
     "{% for i in range(2) %}{% continue %}{% else %}E{% endfor %}|{% for i in range(2) %}{{ i "
     "}}{% if i %}{% break %}{% endif %}{% else %}E{% endfor %}|{% for i in range(2) %}{{ i }}{% "
     "else %}E{% endfor %}",
     "{}", "E|01|01"},
    {"block_set_scope",
     "{% set a = 'A' %}{% set b %}{% set a = 'B' %}{{ a }}{% endset %}{{ a }}{{ b }}", "{}", "AB"},
    {"round_int", "{{ 3 | round }} {{ 2.5 | round }} {{ 7 | round(1) }}", "{}", "3 2.0 7"},
    {"lazy_filters_on_falsy",
     "{{ none | select | list }} {{ 0 | map('string') | list }} {{ false | selectattr('x') | list "
     "}}",
     "{}", "[] [] []"},
    {"undefined_repr", "{{ [u, 1] }} {{ l | map(attribute='zz') | list }}", "{\"l\": [{\"a\": 1}]}",
     "[Undefined, 1] [Undefined]"},
    {"float_odd_even", "{{ 1.5 is odd }} {{ 3.0 is odd }} {{ 4.0 is even }}", "{}",
     "False True True"},

};

TEST(ChatTemplateTest, MatchesJinja2) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(render(c.tmpl, ordered_json::parse(c.context)), c.expected);
  }
}

TEST(ChatTemplateTest, ErrorsNameConstructAndPosition) {
  EXPECT_NE(error_of("ab\n  {{ x | nofilter }}").find("unknown or unsupported filter 'nofilter'"),
            std::string::npos);
  EXPECT_NE(error_of("ab\n  {{ x | nofilter }}").find("line 2, column 10"), std::string::npos);
  EXPECT_NE(
      error_of("{% include 'x.j2' %}").find("(line 1, column 4): unsupported statement 'include'"),
      std::string::npos)
      << error_of("{% include 'x.j2' %}");
  EXPECT_NE(error_of("{% extends 'b' %}").find("unsupported statement 'extends'"),
            std::string::npos);
  EXPECT_NE(error_of("{% call m() %}{% endcall %}").find("unsupported statement 'call'"),
            std::string::npos);
  EXPECT_NE(error_of("{% for x in y recursive %}{% endfor %}").find("recursive"),
            std::string::npos);
  EXPECT_NE(error_of("{{ x is nosuchtest }}").find("unknown or unsupported test 'nosuchtest'"),
            std::string::npos);
  EXPECT_NE(error_of("{% for x in y %}\nno end").find("expected 'else' or 'endfor'"),
            std::string::npos);
  EXPECT_NE(error_of("{% endif %}").find("unexpected 'endif'"), std::string::npos);
  EXPECT_NE(error_of("{% if true %}{% break %}{% endif %}").find("'break' outside loop"),
            std::string::npos);
  EXPECT_NE(error_of("{% if 1 if 2 else 3 %}{% endif %}").find("expected end of statement"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 1 + }}").find("line 1, column 8"), std::string::npos)
      << error_of("{{ 1 + }}");
  EXPECT_NE(error_of("{{ (1 }}").find("unexpected '}'"), std::string::npos) << error_of("{{ (1 }}");
  EXPECT_NE(error_of("{{ 'abc }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(error_of("{# never closed").find("missing end of comment"), std::string::npos);
  EXPECT_NE(error_of("{{ x }").find("(line 1, column 6): unexpected '}'"), std::string::npos)
      << error_of("{{ x }");
  EXPECT_NE(error_of("{{ 'a'.format(1) }}").find("unsupported method str.format()"),
            std::string::npos);
  EXPECT_NE(error_of("{{ [1].append(2) }}").find("list.append"), std::string::npos);
}

TEST(ChatTemplateTest, RuntimeErrorsAsJinja) {
  EXPECT_NE(error_of("\n\n  {{ u.x }}").find("(line 3, column 7): 'u' is undefined"),
            std::string::npos)
      << error_of("\n\n  {{ u.x }}");
  EXPECT_NE(error_of("{{ 'a' + d.c }}", {{"d", ordered_json::object()}})
                .find("'dict object' has no attribute 'c'"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("can only concatenate str"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{% for x in none %}{% endfor %}").find("'NoneType' object is not iterable"),
            std::string::npos);
  EXPECT_NE(error_of("{% set x = 1 %}{% set x.a = 2 %}").find("non-namespace"), std::string::npos);
  EXPECT_NE(error_of("{{ u() }}").find("'u' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x'() }}").find("not callable"), std::string::npos);
  EXPECT_NE(error_of("{{ raise_exception('roles must alternate') }}")
                .find("chat template raised an exception: roles must alternate"),
            std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000) }}").find("range too big"), std::string::npos);
}

TEST(ChatTemplateTest, ResourceLimits) {
  jinja::RenderLimits small;
  small.max_steps = 200000;
  small.max_output_bytes = 1 << 20;
  EXPECT_NE(
      error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
               ordered_json::object(), small)
          .find("step budget"),
      std::string::npos);
  EXPECT_NE(error_of("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}",
                     ordered_json::object(), small)
                .find("output too large"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000000 }}", ordered_json::object(), small).find("too large"),
            std::string::npos);
  EXPECT_NE(
      error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("macro call depth"),
      std::string::npos);
  std::string deep(5000, '(');
  EXPECT_NE(error_of("{{ " + deep + "1" + std::string(5000, ')') + " }}").find("nested too deeply"),
            std::string::npos);
  std::string deep_if;
  for (int i = 0; i < 2000; ++i) deep_if += "{% if true %}";
  EXPECT_NE(error_of(deep_if).find("nested too deeply"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(3000, '-') + "1 }}").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(error_of("{{ x" + std::string(3000, '|') + " }}"), "");
}

TEST(ChatTemplateTest, HfContextDefaults) {
  ordered_json req = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"foo", 3}};
  ordered_json ctx = hf_chat_context(req, {{"bos_token", "<s>"}});
  EXPECT_EQ(ctx["bos_token"], "<s>");
  EXPECT_EQ(ctx["foo"], 3);
  EXPECT_TRUE(ctx["tools"].is_null());
  EXPECT_EQ(ctx["add_generation_prompt"], false);
  ChatTemplate t("{{ bos_token }}{{ tools is none }}{{ foo }}{{ add_generation_prompt }}");
  EXPECT_EQ(t.render(ctx), "<s>True3False");
  EXPECT_THROW(hf_chat_context({{"messages", ordered_json::array()}}, {}), Error);
  EXPECT_THROW(hf_chat_context({{"nomessages", 1}}, {}), Error);
}

TEST(ChatTemplateTest, HfMessageNormalization) {
  ordered_json req = {
      {"messages", {{{"role", "assistant"}, {"content", nullptr}, {"reasoning", "r"}, {"x", 1}}}}};
  HfMessageNormalization norm{true, true};
  ordered_json ctx = hf_chat_context(req, {}, norm);
  const ordered_json& m = ctx["messages"][0];
  EXPECT_FALSE(m.contains("content"));
  EXPECT_EQ(m.dump(),
            R"({"thinking":"r","role":"assistant","reasoning":"r","x":1,"reasoning_content":"r"})");
}

TEST(ChatTemplateTest, KeyOrderPreservedInToJson) {
  ordered_json ctx = ordered_json::parse(R"({"t": {"z": 1, "a": {"y": 2, "b": 3}}})");
  EXPECT_EQ(render("{{ t | tojson }}", ctx), R"({"z": 1, "a": {"y": 2, "b": 3}})");
}

TEST(ChatTemplateTest, RendersShippedTemplates) {
  namespace fs = std::filesystem;
  ordered_json req = ordered_json::parse(R"({"messages": [
      {"role": "system", "content": "S"}, {"role": "user", "content": "U"},
      {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}],
      "add_generation_prompt": true})");
  ChatTemplateSource src =
      load_chat_template_source(std::string(WIDESERVE_DATA_DIR) + "/tokenizers/deepseek-v3");
  ordered_json ctx = hf_chat_context(req, src.special_tokens);
  EXPECT_EQ(ChatTemplate(select_chat_template(src, false)).render(ctx),
            "<｜begin▁of▁sentence｜>S<｜User｜>U<｜Assistant｜>A<｜end▁of▁sentence｜><｜User｜>V<"
            "｜Assistant｜>");
  int n = 0;
  for (const auto& e : fs::directory_iterator(std::string(WS_TEST_FIXTURES) + "/chat_templates")) {
    std::ifstream f(e.path());
    std::stringstream ss;
    ss << f.rdbuf();
    SCOPED_TRACE(e.path().string());
    EXPECT_FALSE(ChatTemplate(ss.str()).render(ctx).empty());
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST(ChatTemplateTest, RenderIsThreadSafe) {
  ChatTemplate t(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}"
      "{% endfor %}{{ ns.n }}");
  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 300; ++i) {
        ordered_json ctx = {
            {"messages", {{{"content", std::to_string(k)}}, {{"content", std::to_string(i)}}}}};
        if (t.render(ctx) != std::to_string(k) + std::to_string(i) + "2") ++bad[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) EXPECT_EQ(bad[k], 0);
}

}  // namespace
}  // namespace wideserve::tokenizer
