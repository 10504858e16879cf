# Users as others see them: profiles and privacy from a contact, a stranger
# and a blocked user; contacts and address-book sync; search; blocking.
# Three users sign in for real (a fake Twilio hands the codes over).

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatAuth;
use FakeHTTP;
use HTTP::Tiny;
use JSON::PP;
use utf8;

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;
$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

our $Run = sprintf "%04d", $$ % 10000;
our %Phone = map { $_->[0] => sprintf("+1628556%04d", ($Run + $_->[1]) % 10000) }
             [alice => 0], [bob => 1], [carol => 2], [dave => 3];
our (%Tok, %Id);

sub api {
    my ($who, $method, $path, $data) = @_;
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json',
                       Authorization => "Bearer $Tok{$who}{accessToken}" },
          ($data ? (content => encode_json($data)) : ()) });
    die "$method $path: $r->{status} $r->{content}"
        unless $r->{status} =~ /^2/;
    return decode_json($r->{content});
}

sub setup {
    return if %Tok;
    for my $who (qw(alice bob carol dave)) {
        $Tok{$who} = ChatAuth::sign_in($Twilio, $Phone{$who}, $who);
        $Id{$who} = $Tok{$who}{user}{id};
    }
    api(alice => PUT => "/api/users/profile", { name => "Zoë Ångström",
        username => "zoe_$Run", bio => "hi", avatar => "https://cdn.test/z.png",
        privacy => { profilePhoto => "everyone", about => "contacts",
                     phone => "contacts", lastSeen => "nobody" } });
    api(bob => PUT => "/api/users/profile", { name => "Bob $Run" });
    api(carol => PUT => "/api/users/profile", { name => "Carol $Run" });
    api(alice => POST => "/api/users/add-contact", { userId => $Id{bob} });
}

sub dyn {
    my ($block, %v) = @_;
    $block->set_value("request", $v{request}) if defined $v{request};
    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "Authorization: Bearer $Tok{$v{as}}{accessToken}")
        if defined $v{as};
    for my $k (qw(response_body_like error_code response_body)) {
        $block->set_value($k, $v{$k}) if defined $v{$k};
    }
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
    chat_avatar_url_host cdn.test;
}) unless defined $block->http_config;

    $block->set_value("config", "location /api/ { chat_api; }")
        unless defined $block->config;
    $block->set_value("request", "GET /placeholder")
        unless defined $block->request;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: my profile, with my privacy settings
--- init
main::setup();
main::dyn($block, as => "alice", request => "GET /api/users/profile",
    response_body_like => qr/^\{"user":\{"id":"$main::Id{alice}","phone":"\Q$main::Phone{alice}\E",.*"name":"Zo\x{c3}\x{ab} \x{c3}\x{85}ngstr\x{c3}\x{b6}m".*"privacy":\{"lastSeen":"nobody","online":"everyone","profilePhoto":"everyone","about":"contacts","readReceipts":"everyone","groups":"everyone","phone":"contacts","searchable":true\},"notifications":\{"preview":false\}\}\}$/);
--- error_code: 200



=== TEST 2: a contact sees what "contacts" allows
--- init
main::dyn($block, as => "bob", request => "GET /api/users/$main::Id{alice}",
    response_body_like => qr/^\{"user":\{"id":"$main::Id{alice}","name":"[^"]+","username":"zoe_$main::Run","avatar":"https:\/\/cdn.test\/z.png","bio":"hi","phone":"\Q$main::Phone{alice}\E","online":false,"isContact":false,"isBlocked":false\}\}$/);
--- error_code: 200



=== TEST 3: a stranger sees the name and the photo, not the about or number
--- init
main::dyn($block, as => "carol", request => "GET /api/users/$main::Id{alice}",
    response_body_like => qr/^\{"user":\{"id":"$main::Id{alice}","name":"[^"]+","username":"zoe_$main::Run","avatar":"https:\/\/cdn.test\/z.png","online":false,"isContact":false,"isBlocked":false\}\}$/);
--- error_code: 200



=== TEST 4: block: alice blocks carol
--- init
main::dyn($block, as => "alice", request => "POST /api/users/$main::Id{carol}/block");
--- response_body
{"success":true}
--- error_code: 200



=== TEST 5: a blocked user sees a name and nothing more
--- init
main::dyn($block, as => "carol", request => "GET /api/users/$main::Id{alice}",
    response_body => qq{{"user":{"id":"$main::Id{alice}","name":"Zo\x{c3}\x{ab} \x{c3}\x{85}ngstr\x{c3}\x{b6}m","username":"zoe_$main::Run","isContact":false,"isBlocked":false}}\n});
--- error_code: 200



=== TEST 6: my blocked list, and how I see the one I blocked
--- init
main::dyn($block, as => "alice", request => "GET /api/users/blocked",
    response_body_like => qr/^\{"items":\[\{"id":"$main::Id{carol}","name":"Carol $main::Run",.*"isBlocked":true\}\]\}$/);
--- error_code: 200



=== TEST 7: my contacts
--- init
main::dyn($block, as => "alice", request => "GET /api/users/contacts",
    response_body_like => qr/^\{"items":\[\{"id":"$main::Id{bob}","name":"Bob $main::Run",.*"isContact":true,"isBlocked":false\}\]\}$/);
--- error_code: 200



=== TEST 8: add a contact by a national number with its country
--- init
(my $national = $main::Phone{dave}) =~ s/^\+1(\d{3})(\d{3})(\d{4})$/($1) $2-$3/;
main::dyn($block, as => "bob", request => "POST /api/users/add-contact\n"
    . JSON::PP::encode_json({ phone => $national, countryCode => "US", name => "Dave from work" }),
    response_body_like => qr/^\{"contact":\{"id":"$main::Id{dave}",.*"isContact":true/);
--- error_code: 200



=== TEST 9: adding oneself, an unknown number, both or neither
--- init
main::dyn($block, as => "bob",
    request => [ map { "POST /api/users/add-contact\n" . JSON::PP::encode_json($_) }
        { userId => $main::Id{bob} }, { phone => "+16285550000" },
        { phone => "+16285550000", userId => $main::Id{alice} }, {},
        { phone => "not a number" }, { userId => '{"$gt":""}' } ],
    error_code => [404, 404, 400, 400, 422, 404],
    response_body_like => [ qr/not_found/, qr/not_found/, qr/invalid_request/,
        qr/invalid_request/, qr/invalid_phone/, qr/not_found/ ]);



=== TEST 10: delete a contact, then again
--- init
main::dyn($block, as => "bob",
    request => [ "DELETE /api/users/contacts/$main::Id{dave}",
                 "DELETE /api/users/contacts/$main::Id{dave}" ],
    error_code => [200, 404],
    response_body_like => [ qr/^\{"success":true\}$/, qr/"code":"not_found"/ ]);



=== TEST 11: address-book sync of 5,000 numbers finds the registered ones, each with the numbers I sent for them, as I wrote them
--- init
my @book = map { sprintf "+1 628 557 %04d", $_ } 0 .. 4995;
my $carol = $main::Phone{carol} =~ s/^\+1(\d{3})(\d{3})(\d{4})$/($1) $2-$3/r;
my $alice2 = $main::Phone{alice} =~ s/^\+1//r;
push @book, $main::Phone{alice}, $carol, $alice2, "garbage";
main::dyn($block, as => "bob", request => "POST /api/users/contacts/sync\n"
    . JSON::PP::encode_json({ phones => \@book, countryCode => "US" }),
    response_body => CORE::join(",", sort { $a cmp $b }
        "$main::Id{alice}:" . CORE::join("|", sort $main::Phone{alice}, $alice2),
        "$main::Id{carol}:$carol"));
--- response_body_filters eval
sub {
    my $items = JSON::PP::decode_json($_[0])->{items};
    CORE::join ",", sort { $a cmp $b } map {
        my @p = sort @{ $_->{phones} || [] };
        "$_->{id}:" . CORE::join("|", @p)
            . (($_->{phone} // "") eq ($_->{phones}[0] // "-") ? "" : " phone?")
    } @$items;
}
--- error_code: 200
--- timeout: 10



=== TEST 12: ... and says what it knows of them
--- init
main::dyn($block, as => "bob", request => "POST /api/users/contacts/sync\n"
    . JSON::PP::encode_json({ phones => [ $main::Phone{alice}, $main::Phone{carol}, "+16285550000" ] }),
    response_body_like => qr/^\{"items":\[(\{"id":"($main::Id{alice}|$main::Id{carol})"[^}]*\},?){2}\]\}$/);
--- error_code: 200



=== TEST 13: sync never shows who blocked you
--- init
main::dyn($block, as => "carol", request => "POST /api/users/contacts/sync\n"
    . JSON::PP::encode_json({ phones => [ $main::Phone{alice}, $main::Phone{bob} ] }),
    response_body_like => qr/^\{"items":\[\{"id":"$main::Id{bob}"[^{}]*\}\]\}$/);
--- error_code: 200



=== TEST 14: sync: bad inputs
--- init
main::dyn($block, as => "bob",
    request => [ map { "POST /api/users/contacts/sync\n" . JSON::PP::encode_json($_) }
        {}, { phones => "x" }, { phones => [ ("+16285550000") x 5001 ] } ],
    error_code => [400, 400, 400],
    response_body_like => [ qr/phones is required/, qr/phones must be an array/,
                            qr/more than 5000/ ]);



=== TEST 15: search by name: case and accents do not matter
--- init
main::dyn($block, as => "bob",
    request => [ "GET /api/users/search?q=zoe", "GET /api/users/search?q=ZO%C3%8B%20ang",
                 "GET /api/users/search?q=zoe_$main::Run" ],
    response_body_like => [ (qr/"id":"$main::Id{alice}"/) x 3 ],
    error_code => [200, 200, 200]);



=== TEST 16: search by phone number, any format
--- init
(my $n = $main::Phone{alice}) =~ s/^\+1(\d{3})(\d{3})(\d{4})$/%2B1%20($1)%20$2-$3/;
main::dyn($block, as => "bob", request => "GET /api/users/search?q=$n",
    response_body_like => qr/^\{"items":\[\{"id":"$main::Id{alice}"/);
--- error_code: 200



=== TEST 17: who blocked you never shows up in search
--- init
main::dyn($block, as => "carol", request => [ "GET /api/users/search?q=zoe",
    "GET /api/users/search?q=" . ($main::Phone{alice} =~ s/\+/%2B/r) ],
    response_body => [ qq{{"items":[]}\n}, qq{{"items":[]}\n} ],
    error_code => [200, 200]);



=== TEST 18: hidden from search by name, still found by number
--- init
main::api(alice => PUT => "/api/users/profile", { privacy => { searchable => JSON::PP::false } });
main::dyn($block, as => "bob", request => [ "GET /api/users/search?q=zoe",
    "GET /api/users/search?q=" . ($main::Phone{alice} =~ s/\+/%2B/r) ],
    response_body_like => [ qr/^\{"items":\[\]\}$/, qr/"id":"$main::Id{alice}"/ ],
    error_code => [200, 200]);



=== TEST 19: search pages with a cursor
--- init
main::dyn($block, as => "alice", request => "GET /api/users/search?q=bob%20$main::Run&limit=1",
    response_body_like => qr/^\{"items":\[\{"id":"$main::Id{bob}".*\],"nextCursor":"$main::Id{bob}"\}$/);
--- error_code: 200



=== TEST 20: search: bad inputs
--- init
main::dyn($block, as => "dave",
    request => [ "GET /api/users/search", "GET /api/users/search?q=a&limit=0",
                 "GET /api/users/search?q=a&cursor=zzz", "GET /api/users/search?q=" . ("a" x 65),
                 "GET /api/users/search?q=%2E%2A" ],
    error_code => [400, 400, 400, 400, 200],
    response_body_like => [ qr/q is required/, qr/limit must be/, qr/cursor is not valid/,
                            qr/q must be valid UTF-8/, qr/^\{"items":\[\]\}$/ ]);



=== TEST 21: search is rate-limited per user
--- init
main::dyn($block, as => "dave",
    request => [ map { "GET /api/users/search?q=x$_" } 1 .. 26 ],
    error_code => [ (200) x 25, 429 ],
    response_body_like => [ (qr/items/) x 25, qr/"code":"rate_limited"/ ]);



=== TEST 22: profile: bad privacy values
--- init
main::dyn($block, as => "bob",
    request => [ map { "PUT /api/users/profile\n" . JSON::PP::encode_json($_) }
        { privacy => "all" }, { privacy => { about => "friends" } },
        { privacy => { searchable => "yes" } }, { privacy => { lastSeen => 1 } },
        { name => "" }, { username => "zoe_$main::Run" } ],
    error_code => [400, 400, 400, 400, 400, 409],
    response_body_like => [ qr/privacy must be an object/,
        qr/about must be \\"everyone\\", \\"contacts\\" or \\"nobody\\"/,
        qr/searchable must be true or false/, qr/lastSeen must be a string/,
        qr/name must not be blank/, qr/username_taken/ ]);



=== TEST 23: unblock, then again; block oneself; a bad id
--- init
main::dyn($block, as => "alice",
    request => [ "DELETE /api/users/$main::Id{carol}/block",
                 "DELETE /api/users/$main::Id{carol}/block",
                 "POST /api/users/$main::Id{alice}/block",
                 "POST /api/users/nothex/block",
                 "GET /api/users/000000000000000000000000" ],
    error_code => [200, 404, 404, 404, 404],
    response_body_like => [ qr/success/, qr/not_found/, qr/not_found/,
                            qr/not_found/, qr/not_found/ ]);



=== TEST 24: unblocked: carol sees the photo again
--- init
main::dyn($block, as => "carol", request => "GET /api/users/$main::Id{alice}",
    response_body_like => qr/"avatar":"https:\/\/cdn.test\/z.png"/);
--- error_code: 200
