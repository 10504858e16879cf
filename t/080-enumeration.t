# No enumeration (issue 21): lookups by phone number (add-contact by
# phone, contact sync, search by number) share one daily budget of
# distinct numbers per user (chat_lookup_daily_numbers, 50 here), counted
# in Redis as short hashes; the same number again costs nothing, formats
# of one number are one number, a sync past the budget is refused whole,
# other users keep theirs.  GET /api/users/:id has a per-user limit
# (chat_user_view_limit, 20 a minute here).

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;
use HTTP::Tiny;

our ($Got, %Id, %Phone);
*Id = \%ChatChats::Id;
*Phone = \%ChatChats::Phone;

BEGIN {
    ChatChats::init("780", "chat_lookup_daily_numbers 50;\n"
                    . "    chat_user_view_limit 20 1m;");
}

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 60);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

# a number nobody has: +1 650 253 NNNN
sub main::nobody { sprintf "+1650253%04d", $_[0] }

# "status code" of a call, with " retry" when Retry-After is a sane wait
sub main::try {
    my ($who, $method, $path, $data) = @_;
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json',
                       Authorization => "Bearer $ChatChats::Tok{$who}{accessToken}" },
          (defined $data ? (content => encode_json($data)) : ()) });
    my $b = eval { decode_json($r->{content}) } // {};
    my $s = $r->{status};
    if ($s =~ /^2/) {
        $s .= " ok";
        $s .= " " . scalar(@{ $b->{items} }) if ref $b->{items};
    } else {
        $s .= " " . ($b->{error}{code} // "-");
    }
    my $ra = $r->{headers}{'retry-after'};
    $s .= " retry" if defined $ra && $ra =~ /^\d+$/ && $ra >= 1
                      && $ra <= 86400;
    return $s;
}

sub main::add { main::try($_[0] => POST => "/api/users/add-contact",
                          { phone => $_[1], @_[2 .. $#_] }) }

# distinct answers of a list, with their counts, in order of first seen
sub main::tally {
    my (%n, @order);
    for (@_) { push @order, $_ unless $n{$_}++ }
    return join ", ", map { "$n{$_} x $_" } @order;
}

sub main::redis {
    my $out = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} @_`;
    chomp $out;
    return $out;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: add-contact by phone: 50 distinct numbers answered (bob's found), the 51st refused with 429 and Retry-After; numbers already looked up (bob's in another format) still answered; the set holds 50 short hashes, no number, and expires with the day
--- init
ChatChats::setup();
my @r;
my @first = map { main::add(alice => main::nobody($_)) } 1 .. 49;
push @first, main::add(alice => $main::Phone{bob});
push @r, "first 50: " . main::tally(@first);
push @r, "51st: " . main::add(alice => main::nobody(50));
push @r, "52nd: " . main::add(alice => main::nobody(51));
(my $national = $main::Phone{bob}) =~ s/^\+1(\d{3})(\d{3})(\d{4})$/($1) $2-$3/;
push @r, "bob again: " . main::add(alice => $national, countryCode => "US");
push @r, "first again: " . main::add(alice => main::nobody(1));
my @keys = split /\n/, main::redis("--scan --pattern 'lk:$main::Id{alice}:*'");
push @r, "keys: " . scalar @keys;
push @r, "members: " . main::redis("scard $keys[0]");
my @m = split /\n/, main::redis("smembers $keys[0]");
my $digits = substr $main::Phone{bob}, 2;
push @r, "hashes: " . ((grep { /^[0-9a-f]{16}$/ && index($_, $digits) < 0 } @m) == 50 ? "yes" : "no");
my $ttl = main::redis("ttl $keys[0]");
push @r, "expires within a day: " . ($ttl > 0 && $ttl <= 86400 ? "yes" : $ttl);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
first 50: 49 x 404 not_found, 1 x 200 ok
51st: 429 rate_limited retry
52nd: 429 rate_limited retry
bob again: 200 ok
first again: 404 not_found
keys: 1
members: 50
hashes: yes
expires within a day: yes



=== TEST 2: the budget is shared: past it, search by a new number is refused, by a number already looked up answered; search by name is no number lookup; a sync with one new number is refused whole, a sync of known numbers answered
--- init
ChatChats::setup();
my @r;
push @r, "search new: " . main::try(alice => GET => "/api/users/search?q=" . "%2B" . substr(main::nobody(60), 1));
push @r, "search bob: " . main::try(alice => GET => "/api/users/search?q=" . "%2B" . substr($main::Phone{bob}, 1));
push @r, "search name: " . (main::try(alice => GET => "/api/users/search?q=bob") =~ s/ \d+$//r);
push @r, "sync with a new one: " . main::try(alice => POST => "/api/users/contacts/sync",
    { phones => [ $main::Phone{bob}, main::nobody(2), main::nobody(61) ] });
push @r, "sync known: " . main::try(alice => POST => "/api/users/contacts/sync",
    { phones => [ $main::Phone{bob}, main::nobody(2), main::nobody(3) ] });
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
search new: 429 rate_limited retry
search bob: 200 ok 1
search name: 200 ok
sync with a new one: 429 rate_limited retry
sync known: 200 ok 1



=== TEST 3: another user has a budget of their own: a sync of 40 answered, a sync of 20 more refused whole (nothing counted), so 10 adds still fit, then search and add are refused
--- init
ChatChats::setup();
my @r;
push @r, "sync 40: " . main::try(carol => POST => "/api/users/contacts/sync",
    { phones => [ $main::Phone{bob}, map { main::nobody($_) } 101 .. 139 ] });
push @r, "sync 20 more: " . main::try(carol => POST => "/api/users/contacts/sync",
    { phones => [ map { main::nobody($_) } 140 .. 159 ] });
push @r, "resync 40: " . main::try(carol => POST => "/api/users/contacts/sync",
    { phones => [ $main::Phone{bob}, map { main::nobody($_) } 101 .. 139 ] });
push @r, "10 adds: " . main::tally(map { main::add(carol => main::nobody($_)) } 140 .. 149);
push @r, "search new: " . main::try(carol => GET => "/api/users/search?q=" . "%2B" . substr(main::nobody(150), 1));
push @r, "add new: " . main::add(carol => main::nobody(151));
push @r, "searches by a known number: " . main::tally(map { main::try(carol => GET => "/api/users/search?q=" . "%2B" . substr(main::nobody(120), 1)) } 1 .. 3);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "carol", request => "GET /api/users/profile");
--- response_body
sync 40: 200 ok 1
sync 20 more: 429 rate_limited retry
resync 40: 200 ok 1
10 adds: 10 x 404 not_found
search new: 429 rate_limited retry
add new: 429 rate_limited retry
searches by a known number: 3 x 200 ok 0



=== TEST 4: GET /api/users/:id: 20 a minute answered, the 21st refused with 429 and Retry-After; another user's views are their own
--- init
ChatChats::setup();
my @r;
push @r, "20: " . main::tally(map { main::try(bob => GET => "/api/users/$main::Id{alice}") } 1 .. 20);
push @r, "21st: " . main::try(bob => GET => "/api/users/$main::Id{alice}");
push @r, "a walk: " . main::try(bob => GET => "/api/users/" . ("0" x 23) . "1");
push @r, "carol: " . main::try(carol => GET => "/api/users/$main::Id{alice}");
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body
20: 20 x 200 ok
21st: 429 rate_limited retry
a walk: 429 rate_limited retry
carol: 200 ok



=== TEST 5: chat_lookup_daily_numbers 0 is refused
--- http_config eval
ChatTest::chat_http_config() . "    chat_lookup_daily_numbers 0;\n"
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "0" in "chat_lookup_daily_numbers": must be between 1 and 1000000/



=== TEST 6: chat_lookup_daily_numbers of no number is refused
--- http_config eval
ChatTest::chat_http_config() . "    chat_lookup_daily_numbers many;\n"
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_lookup_daily_numbers" directive invalid number/



=== TEST 7: chat_user_view_limit with a window of 0 is refused
--- http_config eval
ChatTest::chat_http_config() . "    chat_user_view_limit 300 0;\n"
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_user_view_limit" window "0" must be 1s-1d/
