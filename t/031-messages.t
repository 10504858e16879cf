# Messages: send, get and list; tempId retries return the same message;
# two concurrent senders get exactly seqs 1..100; paging before/after with
# no gaps or repeats; every content type; bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use JSON::PP;

BEGIN { ChatChats::init("559") }

*Id = \%ChatChats::Id;
our (%Id, %Chat, %Msg, $Got);

sub send_msg {
    my ($who, %m) = @_;
    return ChatChats::call($who => POST => "/api/messages", { %m });
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: send a text: 201 with seq 1; the same tempId again: 200, the same message
--- init
ChatChats::setup();
$main::Chat{ab} = ChatChats::api(alice => POST => "/api/chats/private", { userId => $main::Id{bob} })->{chat}{id};
my ($s1, $b1) = main::send_msg(alice => chatId => $main::Chat{ab}, tempId => "t-1", type => "text", content => "hello\n\tbob");
my ($s2, $b2) = main::send_msg(alice => chatId => $main::Chat{ab}, tempId => "t-1", type => "text", content => "hello\n\tbob");
$main::Msg{first} = $b1->{message}{id};
$main::Got = join " ", $s1, $s2, $b1->{message}{seq}, ($b1->{message}{id} eq $b2->{message}{id} ? "same" : "other"),
    $b1->{message}{senderId} eq $main::Id{alice} ? "sender-ok" : "sender-bad",
    ($b1->{message}{content}{type} eq "text" && $b1->{message}{content}{text} eq "hello\n\tbob"
     && keys %{ $b1->{message}{content} } == 2) ? "content-ok" : "content-bad",
    $b1->{message}{tempId}, $b1->{message}{createdAt} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ ? "time-ok" : "time-bad";
ChatChats::dyn($block, as => "bob", request => "GET /api/messages/$main::Msg{first}",
    response_body_like => qr/^\{"message":\{"id":"$main::Msg{first}","chatId":"$main::Chat{ab}","seq":1,"senderId":"$main::Id{alice}","tempId":"t-1","type":"text","content":\{"type":"text","text":"hello\\n\\tbob"\},"createdAt":"[^"]+","reactions":\[\]\}\}$/);
--- error_code: 200



=== TEST 2: ... as the sender saw it
--- init
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
201 200 1 same sender-ok content-ok t-1 time-ok
--- error_code: 200



=== TEST 3: every content type, and a reply into the same chat
--- init
my @t = (
    [ location => { lat => 48.8584, lng => 2.2945, name => "Tour Eiffel", extra => 1 } ],
    [ contact => { name => "Dave", phone => "+16285550000" } ],
    [ image => { mediaId => "0123456789abcdef01234567", caption => "look" } ],
    [ video => { mediaId => "0123456789abcdef01234567" } ],
    [ audio => { mediaId => "0123456789abcdef01234567" } ],
    [ document => { mediaId => "0123456789abcdef01234567" } ],
);
my @got;
for my $i (0 .. $#t) {
    my ($s, $b) = main::send_msg(bob => chatId => $main::Chat{ab}, tempId => "b$i", type => $t[$i][0],
        content => $t[$i][1], ($i == 0 ? (replyTo => $main::Msg{first}) : ()), unknown => { '$gt' => "" });
    push @got, "$s:$b->{message}{seq}:" . join(",", sort keys %{ $b->{message}{content} })
        . ($b->{message}{content}{type} eq $t[$i][0] ? "" : ":type-bad");
    $main::Msg{loc} = $b->{message} if $i == 0;
}
my $loc = $main::Msg{loc}{content};
$main::Got = join(" ", @got) . " " . ($main::Msg{loc}{replyTo} eq $main::Msg{first} ? "reply-ok" : "reply-bad")
    . " $loc->{latitude},$loc->{longitude},$loc->{name}";
ChatChats::dyn($block, as => "bob", request => "GET /api/chats",
    response_body => "201:2:latitude,longitude,name,type 201:3:name,phone,type 201:4:caption,mediaId,type 201:5:mediaId,type 201:6:mediaId,type 201:7:mediaId,type reply-ok 48.8584,2.2945,Tour Eiffel\n");
--- response_body_filters eval
sub { "$main::Got\n" }
--- error_code: 200



=== TEST 4: unread counts and the last message in my chats
--- init
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub {
    my $c = JSON::PP::decode_json($_[0])->{items}[0];
    "$c->{unreadCount} $c->{lastMessage}{seq} $c->{lastMessage}{type}\n"
}
--- response_body
6 7 document
--- error_code: 200



=== TEST 5: two concurrent senders, 50 messages each: seqs exactly 1..100
--- init
$main::Chat{race} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "race", memberIds => [ $main::Id{bob} ] })->{chat}{id};
my @pids;
for my $who (qw(alice bob)) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $bad = 0;
        for my $i (1 .. 50) {
            my ($s) = main::send_msg($who => chatId => $main::Chat{race}, tempId => "$who-$i", type => "text", content => "$who $i");
            $bad++ unless $s == 201;
            # a retry of every tenth: the same message, not a new one
            if ($i % 10 == 0) {
                my ($s2) = main::send_msg($who => chatId => $main::Chat{race}, tempId => "$who-$i", type => "text", content => "$who $i");
                $bad++ unless $s2 == 200;
            }
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @pids, $pid;
}
my $fails = 0;
for (@pids) { waitpid($_, 0); $fails++ if $? }
$main::Got = $fails;
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/$main::Chat{race}/messages?limit=100");
--- response_body_filters eval
sub {
    my $items = JSON::PP::decode_json($_[0])->{items};
    my @seqs = map { $_->{seq} } @$items;
    my %n; $n{$_->{senderId}}++ for @$items;
    "fails=$main::Got n=" . scalar(@seqs) . " seqs=" . ("@seqs" eq CORE::join(" ", CORE::reverse(1 .. 100)) ? "100..1" : "@seqs")
        . " per-sender=" . CORE::join(",", CORE::sort(CORE::values(%n))) . "\n"
}
--- response_body
fails=0 n=100 seqs=100..1 per-sender=50,50
--- error_code: 200
--- timeout: 60



=== TEST 6: paging before and after: every seq once, in order
--- init
my (@down, @up);
my $before = "";
for (1 .. 20) {
    my $p = ChatChats::api(alice => GET => "/api/chats/$main::Chat{race}/messages?limit=7$before");
    last unless @{ $p->{items} };
    push @down, map { $_->{seq} } @{ $p->{items} };
    $before = "&before=$p->{items}[-1]{seq}";
}
my $after = 0;
for (1 .. 20) {
    my $p = ChatChats::api(alice => GET => "/api/chats/$main::Chat{race}/messages?limit=9&after=$after");
    last unless @{ $p->{items} };
    push @up, map { $_->{seq} } @{ $p->{items} };
    $after = $p->{items}[-1]{seq};
}
$main::Got = ("@down" eq join(" ", reverse 1 .. 100) ? "down-ok" : "down: @down") . " "
           . ("@up" eq join(" ", 1 .. 100) ? "up-ok" : "up: @up");
ChatChats::dyn($block, as => "alice", request => "GET /api/chats/$main::Chat{race}/messages?after=95&before=98&limit=100",
    response_body_like => qr/^\{"items":\[\{[^{}]*"seq":97,.*"seq":96,.*\}\]\}$/);
--- response_body_filters eval
sub { "$main::Got " . ($_[0] =~ /"seq":97.*"seq":96/ ? "range-ok" : $_[0]) . "\n" }
--- response_body
down-ok up-ok range-ok
--- error_code: 200



=== TEST 7: a non-member cannot read or get a message: 404
--- init
ChatChats::dyn($block, as => "carol",
    request => [ "GET /api/messages/$main::Msg{first}", "GET /api/chats/$main::Chat{ab}/messages",
                 "GET /api/messages/0123456789abcdef01234567", "GET /api/messages/zz" ],
    error_code => [404, 404, 404, 404]);



=== TEST 8: bad inputs of send
--- init
my $c = $main::Chat{ab};
my %ok = (chatId => $c, type => "text", content => "x");
my @cases = (
    [ { %ok, tempId => "" }, 400, qr/tempId must not be empty/ ],
    [ { %ok, tempId => "x" x 65 }, 400, qr/tempId is too long/ ],
    [ { %ok, tempId => "a b" }, 400, qr/tempId must be/ ],
    [ { %ok, tempId => { '$gt' => "" } }, 400, qr/tempId must be a string/ ],
    [ { %ok, tempId => "e1", chatId => { '$gt' => "" } }, 400, qr/chatId must be a string/ ],
    [ { %ok, tempId => "e2", chatId => "123" }, 400, qr/chatId must be an id/ ],
    [ { %ok, tempId => "e3", chatId => "0123456789abcdef01234567" }, 404, qr/not_found/ ],
    [ { %ok, tempId => "e4", content => "x" x 4097 }, 400, qr/content must be 1 to 4096/ ],
    [ { %ok, tempId => "e5", content => "" }, 400, qr/content must be 1 to 4096/ ],
    [ { %ok, tempId => "e6", content => "a\x{07}b" }, 400, qr/control/ ],
    [ { %ok, tempId => "e7", content => 5 }, 400, qr/content must be a string/ ],
    [ { %ok, tempId => "e8", type => "sticker" }, 400, qr/type must be text/ ],
    [ { %ok, tempId => "e9", type => 1 }, 400, qr/type must be a string/ ],
    [ { %ok, tempId => "e10", type => "location", content => { lat => 91, lng => 0 } }, 400, qr/content.lat/ ],
    [ { %ok, tempId => "e11", type => "location", content => { lat => 0, lng => "1" } }, 400, qr/content.lng/ ],
    [ { %ok, tempId => "e12", type => "contact", content => { name => "x" } }, 400, qr/content.phone is required/ ],
    [ { %ok, tempId => "e13", type => "image", content => { mediaId => { '$gt' => "" } } }, 400, qr/content.mediaId must be a string/ ],
    [ { %ok, tempId => "e14", type => "image", content => "0123456789abcdef01234567" }, 400, qr/must be an object/ ],
    [ { %ok, tempId => "e15", replyTo => { '$gt' => "" } }, 400, qr/replyTo must be a string/ ],
    [ { %ok, tempId => "e16", replyTo => "0123456789abcdef01234567" }, 422, qr/"field":"replyTo"/ ],
    [ { %ok, tempId => "e17", replyTo => $main::Msg{first}, chatId => $main::Chat{race} }, 422, qr/replyTo/ ],
    [ { %ok, tempId => "e18", content => "x" x 4096 }, 201, qr/"seq":8,/ ],
    [ { %ok, tempId => "e19", content => "\x{1F600}" x 4096 }, 201, qr/"seq":9,/ ],
);
ChatChats::dyn($block, as => "alice",
    request => [ map { "POST /api/messages\n" . JSON::PP::encode_json($_->[0]) } @cases ],
    error_code => [ map { $_->[1] } @cases ],
    response_body_like => [ map { $_->[2] } @cases ]);



=== TEST 9: invalid UTF-8 and malformed bodies
--- init
ChatChats::dyn($block, as => "alice",
    request => [ "POST /api/messages\n{\"chatId\":\"$main::Chat{ab}\",\"tempId\":\"u1\",\"type\":\"text\",\"content\":\"\xff\xfe\"}",
                 "POST /api/messages\n[1]", "POST /api/chats/group\n{\"name\":\"\xc3\"}" ],
    error_code => [400, 400, 400], response_body_like => [ qr/invalid_json/, qr/invalid_json/, qr/invalid_json/ ]);



=== TEST 10: list bad inputs
--- init
my $c = $main::Chat{ab};
ChatChats::dyn($block, as => "alice",
    request => [ map { "GET /api/chats/$c/messages?$_" } "limit=0", "limit=101", "before=0", "before=x", "after=-1", "limit=1%00" ],
    error_code => [400, 400, 400, 400, 400, 400]);



=== TEST 11: blocked either way: no message in the private chat, a group still works
--- init
# bob blocks alice: neither can write in their private chat any more; a
# group they share (made before: she cannot add him now) still works
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "both", memberIds => [ $main::Id{bob} ] })->{chat}{id};
ChatChats::api(bob => POST => "/api/users/$main::Id{alice}/block");
ChatChats::dyn($block, as => "alice", request => [
    "POST /api/messages\n" . JSON::PP::encode_json({ chatId => $main::Chat{ab},
        tempId => "blk-1", type => "text", content => "hi?" }),
    "POST /api/messages\n" . JSON::PP::encode_json({ chatId => $g,
        tempId => "blk-2", type => "text", content => "hi all" }) ],
    error_code => [403, 201],
    response_body_like => [ qr/^\{"error":\{"code":"blocked"/, qr/"seq":1/ ]);



=== TEST 12: ... and bob, who blocked, cannot write to alice either; unblocked, both can
--- init
my ($s1) = ChatChats::call(bob => POST => "/api/messages", { chatId => $main::Chat{ab},
    tempId => "blk-3", type => "text", content => "x" });
die "bob wrote to whom he blocked: $s1" unless $s1 == 403;
ChatChats::api(bob => DELETE => "/api/users/$main::Id{alice}/block");
ChatChats::dyn($block, as => "alice", request => "POST /api/messages\n"
    . JSON::PP::encode_json({ chatId => $main::Chat{ab}, tempId => "blk-4",
                              type => "text", content => "friends again" }));
--- response_body_like: "content":\{"type":"text","text":"friends again"\}
--- error_code: 201



=== TEST 13: a retry after Redis forgot its tempId: the same message, once; its number left a tombstone
--- init
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "retries", memberIds => [ $main::Id{bob} ] })->{chat}{id};
my @r;
my $first = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $g, tempId => "rt-1", type => "text", content => "once" });
# straight after: Redis remembers the tempId, the store is asked
my ($s2, $b2) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $g, tempId => "rt-1", type => "text", content => "once" });
# as if its mark had expired: the insert's unique index tells
system("redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} DEL st:{$g}:$main::Id{alice}:rt-1 >/dev/null") == 0
    or die "redis-cli";
my ($s3, $b3) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $g, tempId => "rt-1", type => "text", content => "once" });
my $next = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $g, tempId => "rt-2", type => "text", content => "next" });
push @r, "$first->{message}{seq} $s2:" . ($b2->{message}{id} eq $first->{message}{id} ? "same" : "other"),
    "$s3:" . ($b3->{message}{id} eq $first->{message}{id} ? "same" : "other"),
    "next:$next->{message}{seq}";
my $list = ChatChats::api(bob => GET => "/api/chats/$g/messages?after=0");
push @r, join ",", map { "$_->{seq}:" . ($_->{type} eq "tombstone" ? "tombstone" : $_->{content}{text}) }
    @{ $list->{items} };
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
1 200:same 200:same next:3 1:once,2:tombstone,3:next
--- error_code: 200



=== TEST 14: the seed's content on REST: the type inside it, with or without the top-level one; read back in the same shape
--- init
$main::Chat{seed} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "seed", memberIds => [ $main::Id{bob} ] })->{chat}{id};
my $g = $main::Chat{seed};
my $media = "0123456789abcdef01234567";
my @sent = (
    [ "sd-1", { content => { type => "text", text => "seed hi" } } ],
    [ "sd-2", { type => "text", content => { type => "text", text => "both" } } ],
    [ "sd-3", { content => { type => "location", latitude => 1.5, longitude => -2.5, name => "here" } } ],
    [ "sd-4", { content => { type => "image", mediaId => $media, caption => "pic" } } ],
    [ "sd-5", { type => "location", content => { lat => 3, lng => 4 } } ],
);
my @r;
for (@sent) {
    my ($s, $b) = main::send_msg(alice => chatId => $g, tempId => $_->[0], %{ $_->[1] });
    push @r, "$s:$b->{message}{type}";
}
# a retry in the seed's form: the same message
my ($s, $b) = main::send_msg(alice => chatId => $g, tempId => "sd-1",
    content => { type => "text", text => "seed hi" });
push @r, "retry:$s:$b->{message}{seq}";
my $list = ChatChats::api(bob => GET => "/api/chats/$g/messages?after=0");
push @r, map { my $c = $_->{content};
    join ",", map { "$_=$c->{$_}" } sort keys %$c } @{ $list->{items} };
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
201:text 201:text 201:location 201:image 201:location retry:200:1 text=seed hi,type=text text=both,type=text latitude=1.5,longitude=-2.5,name=here,type=location caption=pic,mediaId=0123456789abcdef01234567,type=image latitude=3,longitude=4,type=location
--- error_code: 200



=== TEST 15: the seed's content on REST is checked like the string: length, control characters, its type
--- init
my $c = $main::Chat{seed};
my %ok = (chatId => $c);
my @cases = (
    [ { %ok, tempId => "sb1", content => { type => "text", text => "x" x 4097 } }, 400, qr/content.text must be 1 to 4096/ ],
    [ { %ok, tempId => "sb2", content => { type => "text", text => "" } }, 400, qr/content.text must be 1 to 4096/ ],
    [ { %ok, tempId => "sb3", content => { type => "text", text => "a\x{07}b" } }, 400, qr/content.text has control characters/ ],
    [ { %ok, tempId => "sb4", content => { type => "text", text => "a\x{85}b" } }, 400, qr/content.text has control characters/ ],
    [ { %ok, tempId => "sb5", content => { type => "text" } }, 400, qr/content.text is required/ ],
    [ { %ok, tempId => "sb6", content => { type => "text", text => 5 } }, 400, qr/content.text must be a string/ ],
    [ { %ok, tempId => "sb7", content => { type => "text", text => { '$gt' => "" } } }, 400, qr/content.text must be a string/ ],
    [ { %ok, tempId => "sb8", content => { type => "sticker", text => "x" } }, 400, qr/type must be text, image/ ],
    [ { %ok, tempId => "sb9", content => { type => 5, text => "x" } }, 400, qr/content.type must be a string/ ],
    [ { %ok, tempId => "sb10", type => "image", content => { type => "text", text => "x" } }, 400, qr/content.type must be the message's type/ ],
    [ { %ok, tempId => "sb11", content => "x" }, 400, qr/type is required/ ],
    [ { %ok, tempId => "sb12", content => { text => "x" } }, 400, qr/type is required/ ],
    [ { %ok, tempId => "sb13", type => "text", content => { text => "x" } }, 400, qr/content must be a string, or an object \{type, text\}/ ],
    [ { %ok, tempId => "sb14", content => { type => "location", latitude => 91, longitude => 0 } }, 400, qr/content.latitude must be a number/ ],
    [ { %ok, tempId => "sb15", content => { type => "location", latitude => 0, longitude => "1" } }, 400, qr/content.longitude must be a number/ ],
    [ { %ok, tempId => "sb16", content => { type => "image", caption => "x" } }, 400, qr/content.mediaId is required/ ],
    [ { %ok, tempId => "sb17", content => { type => "text", text => "\x{1F600}" x 4096 } }, 201, qr/"content":\{"type":"text","text":"/ ],
);
ChatChats::dyn($block, as => "alice",
    request => [ (map { "POST /api/messages\n" . JSON::PP::encode_json($_->[0]) } @cases),
                 "POST /api/messages\n{\"chatId\":\"$c\",\"tempId\":\"sb18\",\"content\":{\"type\":\"text\",\"text\":\"\xff\xfe\"}}",
                 "POST /api/messages\n{\"chatId\":\"$c\",\"tempId\":\"sb19\",\"content\":{\"type\":\"text\",\"text\":\"a\\u0000b\"}}",
                 "POST /api/messages\n{\"chatId\":\"$c\",\"tempId\":\"sb20\",\"content\":{\"type\":\"text\",\"text\":\"\\ud800\"}}" ],
    error_code => [ (map { $_->[1] } @cases), 400, 400, 400 ],
    response_body_like => [ (map { $_->[2] } @cases), qr/invalid_json/, qr/invalid_json/, qr/invalid_json/ ]);
