# Chats: private chats (idempotent, blocked, oneself, unknown users), groups
# (members, admin, size limit, unknown ids), my chats by activity with
# unread counts and paging, and bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;

BEGIN { ChatChats::init("558") }

*Id = \%ChatChats::Id;
our (%Id, %Chat);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a private chat: 201, then the same chat with 200, from either side
--- init
ChatChats::setup();
my ($s1, $b1) = ChatChats::call(alice => POST => "/api/chats/private", { userId => $main::Id{bob} });
my ($s2, $b2) = ChatChats::call(alice => POST => "/api/chats/private", { userId => $main::Id{bob} });
my ($s3, $b3) = ChatChats::call(bob => POST => "/api/chats/private", { userId => $main::Id{alice} });
$main::Chat{ab} = $b1->{chat}{id};
ChatChats::dyn($block, as => "alice", request => "GET /api/chats",
    response_body => "201 200 200 1 1 private member 2\n");
$main::Got = join(" ", $s1, $s2, $s3,
    ($b1->{chat}{id} eq $b2->{chat}{id} ? 1 : 0),
    ($b1->{chat}{id} eq $b3->{chat}{id} ? 1 : 0),
    $b1->{chat}{type}, $b1->{chat}{role}, $b1->{chat}{members}{count});
--- response_body_filters eval
sub { "$main::Got\n" }
--- error_code: 200



=== TEST 2: oneself 422, an unknown user 404, bad ids 400
--- init
ChatChats::dyn($block, as => "alice",
    request => [ map { "POST /api/chats/private\n" . JSON::PP::encode_json($_) }
        { userId => $main::Id{alice} }, { userId => "0123456789abcdef01234567" },
        { userId => { '$gt' => "" } }, { userId => "xyz" }, {}, { userId => 5 },
        { userId => $main::Id{carol}, extra => { '$where' => 1 } } ],
    error_code => [422, 404, 400, 400, 400, 400, 201],
    response_body_like => [ qr/invalid_value/, qr/not_found/, qr/invalid_request/,
        qr/invalid_request/, qr/"userId is required"/, qr/invalid_request/,
        qr/"type":"private"/ ]);



=== TEST 3: a block either way forbids a new private chat
--- init
ChatChats::api(carol => POST => "/api/users/$main::Id{bob}/block");
ChatChats::dyn($block, as => "bob",
    request => [ "POST /api/chats/private\n" . JSON::PP::encode_json({ userId => $main::Id{carol} }) ],
    error_code => [403], response_body_like => [ qr/"code":"blocked"/ ]);



=== TEST 4: a group: the creator is admin, the members are in
--- init
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "Trip \x{2708}", description => "plans\nand more", memberIds => [ $main::Id{bob}, $main::Id{carol} ] });
$main::Chat{g} = $g->{chat}{id};
$main::Got = join " ", $g->{chat}{type},
    ($g->{chat}{name} eq "Trip \x{2708}" ? "name-ok" : "name-bad"), $g->{chat}{role},
    $g->{chat}{members}{count}, join(",", sort @{ $g->{chat}{members}{ids} });
my $b = ChatChats::api(bob => GET => "/api/chats");
my ($mine) = grep { $_->{id} eq $main::Chat{g} } @{ $b->{items} };
$main::Got .= " " . $mine->{role};
ChatChats::dyn($block, as => "alice", request => "GET /api/chats",
    response_body => "group name-ok admin 3 " . join(",", sort map { $main::Id{$_} } qw(alice bob carol)) . " member\n");
--- response_body_filters eval
sub { "$main::Got\n" }
--- error_code: 200



=== TEST 5: group bad inputs
--- init
my $u = "0123456789abcdef01234567";
ChatChats::dyn($block, as => "alice",
    request => [ map { "POST /api/chats/group\n" . JSON::PP::encode_json($_) }
        { memberIds => [ $main::Id{bob} ] },
        { name => "", memberIds => [ $main::Id{bob} ] },
        { name => "x" x 101, memberIds => [ $main::Id{bob} ] },
        { name => "a\x{01}b", memberIds => [ $main::Id{bob} ] },
        { name => "g", memberIds => "nope" },
        { name => "g", memberIds => [ { '$gt' => "" } ] },
        { name => "g", memberIds => [ $main::Id{bob}, $main::Id{bob} ] },
        { name => "g", memberIds => [ $main::Id{alice} ] },
        { name => "g", memberIds => [ $main::Id{bob}, $u ] },
        { name => "g", memberIds => [ $main::Id{bob}, $main::Id{carol}, $u, "0123456789abcdef01234568" ] },
        { name => "g", memberIds => [ $main::Id{bob} ], avatar => "ftp://x" },
        { name => [ "g" ], memberIds => [] } ],
    error_code => [400, 400, 400, 400, 400, 400, 400, 400, 422, 422, 400, 400],
    response_body_like => [ qr/name is required/, qr/name must not be empty/,
        qr/name is too long/, qr/control/, qr/must be an array/, qr/ids, as strings/,
        qr/twice/, qr/you are in it/, qr/"unknown":\["$u"\]/,
        qr/group_too_large.*"max":4\b/,
        qr/media id of yours or an https URL of a host this server allows/, qr/must be a string/ ]);



=== TEST 6: my chats, newest activity first, paged with a cursor, no repeats
--- init
my $p1 = ChatChats::api(alice => GET => "/api/chats?limit=2");
my $p2 = ChatChats::api(alice => GET => "/api/chats?limit=2&cursor=$p1->{nextCursor}");
my @ids = map { $_->{id} } @{ $p1->{items} }, @{ $p2->{items} };
my %seen; $seen{$_}++ for @ids;
$main::Got = join " ", scalar(@ids), scalar(keys %seen), ($p2->{nextCursor} ? "more" : "end"),
    $ids[0] eq $main::Chat{g} ? "g-first" : "g-not-first";
ChatChats::dyn($block, as => "alice", request => "GET /api/chats?limit=50",
    response_body => "3 3 end g-first\n");
--- response_body_filters eval
sub { "$main::Got\n" }
--- error_code: 200



=== TEST 7: list bad inputs
--- init
ChatChats::dyn($block, as => "alice",
    request => [ "GET /api/chats?limit=0", "GET /api/chats?limit=51",
                 "GET /api/chats?limit=x", "GET /api/chats?cursor=abc",
                 "GET /api/chats?cursor=1.zz" ],
    error_code => [400, 400, 400, 400, 400]);



=== TEST 8: a non-member probing a chat gets 404, as for no chat
--- init
ChatChats::dyn($block, as => "carol",
    request => [ "GET /api/chats/$main::Chat{ab}/messages",
                 "GET /api/chats/0123456789abcdef01234567/messages",
                 "GET /api/chats/nothex/messages",
                 "POST /api/messages\n" . JSON::PP::encode_json({ chatId => $main::Chat{ab},
                     tempId => "t1", type => "text", content => "hi" }) ],
    error_code => [404, 404, 404, 404],
    response_body_like => [ qr/not_found/, qr/not_found/, qr/not_found/, qr/not_found/ ]);



=== TEST 9: the ids of my chats, all of them, and only mine
--- init
my $mine = ChatChats::api(alice => GET => "/api/chats/ids")->{items};
my $carol = ChatChats::api(carol => GET => "/api/chats/ids")->{items};
my %m = map { $_ => 1 } @$mine;
my %c = map { $_ => 1 } @$carol;
$main::Got = join " ", scalar(@$mine),
    ($m{$main::Chat{ab}} ? "ab" : "-"), ($m{$main::Chat{g}} ? "g" : "-"),
    ($c{$main::Chat{ab}} ? "carol-sees-ab" : "carol-not-in-ab"),
    HTTP::Tiny->new->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
                         . "/api/chats/ids")->{status};
ChatChats::dyn($block, as => "alice", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
3 ab g carol-not-in-ab 401
