#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char** argv) {
  const char* props[] = {"L","Lu","Ll","Lt","Lm","Lo","M","Mn","Mc","Me","N","Nd","Nl","No","P","Pc","Pd","Ps","Pe","Pi","Pf","Po","S","Sm","Sc","Sk","So","Z","Zs","Zl","Zp","Cf","Co","Cc"};
  int np = sizeof(props)/sizeof(props[0]);
  printf("{");
  for (int p = 0; p < np; ++p) {
    char pat[32]; snprintf(pat, sizeof pat, "\\p{%s}", props[p]);
    PCRE2_UCHAR32 upat[32]; size_t n = strlen(pat); for (size_t i=0;i<n;++i) upat[i]=pat[i];
    int err; PCRE2_SIZE off;
    pcre2_code* re = pcre2_compile(upat, n, PCRE2_UTF|PCRE2_UCP, &err, &off, NULL);
    pcre2_match_data* md = pcre2_match_data_create(1, NULL);
    printf("%s\"%s\":[", p?",":"", props[p]);
    int first = 1;
    for (unsigned c = 1; c < 0x110000; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      PCRE2_UCHAR32 s[1] = {c};
      if (pcre2_match(re, s, 1, 0, 0, md, NULL) >= 0) { printf(first?"%u":",%u", c); first = 0; }
    }
    printf("]");
  }
  printf("}\n");
}
