package ChatTest;

# Shared Test::Nginx settings of the suite: the module's http{} directives
# pointing at the private Redis and FerretDB that tools/test started, and
# the rule that every block checks its error log unless told otherwise.

use strict;
use warnings;

use Test::Nginx::Socket ();

our @EXPORT_OK = qw(chat_http_config);

sub chat_http_config {
    return <<'_EOC_';
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_mongo_database chat_test;
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
    # the REST buckets are tested where they are the point (t/085), with
    # limits of their own: every client here is 127.0.0.1, the same users
    # sign in block after block, and a reload between blocks keeps the
    # buckets, so elsewhere they are far past what the tests ask
    chat_rest_rate auth 1000r/s burst=100000;
    chat_rest_rate read 10000r/s burst=1000000;
    chat_rest_rate write 10000r/s burst=1000000;
    chat_rest_rate send 10000r/s burst=1000000;
    chat_rest_rate search 10000r/s burst=1000000;
    chat_rest_rate group 10000r/s burst=1000000;
    chat_rest_rate upload 10000r/s burst=1000000;
    chat_rest_rate address 10000r/s burst=1000000;
_EOC_
}

# The blocks of a file that works out its result in --- init and leaves it
# in $main::Got: each asks GET /t and compares "$main::Got\n" with its
# response_body.  $config: the server's locations (a location = /t that
# answers is added), unless a block has its own; $timeout: seconds (60).
sub got_blocks {
    my ($config, $timeout) = @_;

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        $block->set_value("config", $config
                                    . "    location = /t { return 200 \"t\"; }\n")
            unless defined $block->config;
        $block->set_value("request", "GET /t");
        $block->set_value("response_body_filters",
                          sub { (defined $main::Got ? $main::Got : "") . "\n" });
        $block->set_value("timeout", $timeout || 60);
    });
}

sub import {
    my $class = shift;

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        if (!defined $block->http_config) {
            $block->set_value("http_config", chat_http_config());
        }

        if (!defined $block->no_error_log && !defined $block->error_log
            && !defined $block->must_die)
        {
            $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]");
        }
    });

    my $caller = caller;
    no strict 'refs';
    *{"${caller}::chat_http_config"} = \&chat_http_config;
}

1;
