package ChatLua;

# The Lua tests (t/069, t/070): Debian's lua-nginx-module (and the NDK it
# needs) loaded next to our dynamic module, and resty.chat with the
# examples on the Lua path.  Debian's modules are built for Debian's NGINX
# binary only: with the static builds of --asan and --static (our module
# linked in, TEST_NGINX_LOAD_MODULES unset) they cannot load, so the file
# skips itself there.

use strict;
use warnings;

my $Dir = "/usr/lib/nginx/modules";

sub load {
    require Test::More;

    if (!$ENV{TEST_NGINX_LOAD_MODULES}) {
        Test::More::plan(skip_all => "a static NGINX binary (--asan, "
            . "--static): Debian's lua-nginx-module loads only into "
            . "Debian's NGINX");
    }

    if (!-f "$Dir/ngx_http_lua_module.so") {
        Test::More::plan(skip_all => "libnginx-mod-http-lua is not "
            . "installed (tools/bootstrap installs it)");
    }

    $ENV{TEST_NGINX_LOAD_MODULES} = "$Dir/ndk_http_module.so "
        . "$Dir/ngx_http_lua_module.so $ENV{TEST_NGINX_LOAD_MODULES}";
}

# resty.chat and the examples, then the default paths (resty.core, cjson)
sub package_path {
    return 'lua_package_path "$TEST_NGINX_ROOT/lua-compat/lib/?.lua;'
         . '$TEST_NGINX_ROOT/lua-compat/examples/?.lua;;";';
}

1;
