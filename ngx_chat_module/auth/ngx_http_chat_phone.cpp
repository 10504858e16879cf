/*
 * Copyright (C) ngx_chat_module authors
 */


/*
 * The C interface of ngx_http_chat_phone.h over libphonenumber's C++ API.
 * PhoneNumberUtil is a leaky singleton built once under pthread_once; its
 * methods used here are const and lock their shared regexp cache, so any
 * thread may call in.  Nothing thrown inside gets out of extern "C".
 */

#include <string.h>

#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

extern "C" {
#include "ngx_http_chat_phone.h"
}


#define NGX_HTTP_CHAT_PHONE_MAX_INPUT  64


using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;


static int ngx_http_chat_phone_fail(ngx_http_chat_phone_t *out, int rc,
    const char *error);
static int ngx_http_chat_phone_region(PhoneNumberUtil *util,
    const char *country, size_t len, std::string *region);
static int ngx_http_chat_phone_check(PhoneNumberUtil *util,
    const char *input, size_t len, const char *country, size_t country_len,
    ngx_http_chat_phone_t *out);


extern "C" int
ngx_http_chat_phone_normalize(const char *input, size_t len,
    const char *country, size_t country_len, ngx_http_chat_phone_t *out)
{
    memset(out, 0, sizeof(ngx_http_chat_phone_t));

    try {
        return ngx_http_chat_phone_check(PhoneNumberUtil::GetInstance(),
                                         input, len, country, country_len,
                                         out);

    } catch (...) {
        /* std::bad_alloc, mostly: say no rather than unwind through C */
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number could not be "
                                        "checked");
    }
}


extern "C" void
ngx_http_chat_phone_init(void)
{
    ngx_http_chat_phone_t  phone;

    /* the metadata, and the regexps a first parse compiles */
    (void) ngx_http_chat_phone_normalize("+14155550100", 12, NULL, 0, &phone);
}


static int
ngx_http_chat_phone_check(PhoneNumberUtil *util, const char *input,
    size_t len, const char *country, size_t country_len,
    ngx_http_chat_phone_t *out)
{
    size_t                            i;
    std::string                       region, e164, number_region;
    PhoneNumber                       number;
    PhoneNumberUtil::ErrorType        err;
    PhoneNumberUtil::PhoneNumberType  type;

    if (input == NULL || len == 0) {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is empty");
    }

    if (len > NGX_HTTP_CHAT_PHONE_MAX_INPUT) {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is too long");
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) input[i] < 0x20 || input[i] == 0x7f) {
            return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                            "the phone number contains "
                                            "control characters");
        }
    }

    if (ngx_http_chat_phone_region(util, country, country_len, &region)
        != NGX_HTTP_CHAT_PHONE_OK)
    {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_BAD_COUNTRY,
                                        "unknown country");
    }

    err = util->Parse(std::string(input, len), region, &number);

    switch (err) {

    case PhoneNumberUtil::NO_PARSING_ERROR:
        break;

    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number must start with "
                                        "+ and a known country code");

    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN:
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is too short");

    case PhoneNumberUtil::TOO_LONG_NSN:
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is too long");

    default: /* NOT_A_NUMBER */
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "this is not a phone number");
    }

    if (number.has_extension()) {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number must not have an "
                                        "extension");
    }

    /* length and prefixes, against the metadata of the number's region */

    if (!util->IsValidNumber(number)) {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is not valid for "
                                        "its country");
    }

    type = util->GetNumberType(number);

    switch (type) {

    case PhoneNumberUtil::MOBILE:
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE:
    case PhoneNumberUtil::PAGER:
    case PhoneNumberUtil::PERSONAL_NUMBER:
        break;

    default:
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_NOT_MOBILE,
                                        "this number cannot receive SMS");
    }

    util->Format(number, PhoneNumberUtil::E164, &e164);
    util->GetRegionCodeForNumber(number, &number_region);

    if (e164.size() >= sizeof(out->e164)
        || number_region.size() >= sizeof(out->region))
    {
        return ngx_http_chat_phone_fail(out, NGX_HTTP_CHAT_PHONE_INVALID,
                                        "the phone number is too long");
    }

    memcpy(out->e164, e164.c_str(), e164.size() + 1);
    memcpy(out->region, number_region.c_str(), number_region.size() + 1);
    out->calling_code = number.country_code();

    return NGX_HTTP_CHAT_PHONE_OK;
}


/*
 * The region to parse national numbers in: "ZZ" (none: the number must
 * start with "+") without a hint, else the hint's region, from an ISO code
 * ("US", "de") or a calling code ("+1", "1", "49": its main region).
 */

static int
ngx_http_chat_phone_region(PhoneNumberUtil *util, const char *country,
    size_t len, std::string *region)
{
    int     code;
    size_t  i;

    *region = "ZZ";

    if (country == NULL || len == 0) {
        return NGX_HTTP_CHAT_PHONE_OK;
    }

    if (len == 2 && country[0] != '+'
        && ((country[0] | 0x20) >= 'a' && (country[0] | 0x20) <= 'z')
        && ((country[1] | 0x20) >= 'a' && (country[1] | 0x20) <= 'z'))
    {
        region->assign(country, 2);
        (*region)[0] = (*region)[0] & ~0x20;
        (*region)[1] = (*region)[1] & ~0x20;

        /* 0 for "ZZ" and for anything else it has no metadata for */
        if (util->GetCountryCodeForRegion(*region) == 0) {
            return NGX_HTTP_CHAT_PHONE_BAD_COUNTRY;
        }

        return NGX_HTTP_CHAT_PHONE_OK;
    }

    if (country[0] == '+') {
        country++;
        len--;
    }

    if (len == 0 || len > 3) {
        return NGX_HTTP_CHAT_PHONE_BAD_COUNTRY;
    }

    code = 0;

    for (i = 0; i < len; i++) {
        if (country[i] < '0' || country[i] > '9') {
            return NGX_HTTP_CHAT_PHONE_BAD_COUNTRY;
        }

        code = code * 10 + (country[i] - '0');
    }

    /* "ZZ" for an unassigned code, "001" for a non-geographic one */
    util->GetRegionCodeForCountryCode(code, region);

    if (*region == "ZZ") {
        return NGX_HTTP_CHAT_PHONE_BAD_COUNTRY;
    }

    if (*region == PhoneNumberUtil::kRegionCodeForNonGeoEntity) {
        /* no national format to parse in: the number must have the "+" */
        *region = "ZZ";
    }

    return NGX_HTTP_CHAT_PHONE_OK;
}


static int
ngx_http_chat_phone_fail(ngx_http_chat_phone_t *out, int rc,
    const char *error)
{
    out->e164[0] = '\0';
    out->region[0] = '\0';
    out->calling_code = 0;
    out->error = error;

    return rc;
}
