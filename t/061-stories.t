# Stories: who sees what (the author, a contact, an excluded contact, a
# close friend in an "only" list, a stranger, blocked either way) for each
# privacy mode, on a single story, a user's stories, the feed, views and
# reactions; views once per viewer under concurrent requests; reactions
# replaced and removed; media stories checked against the upload's type;
# deletion; expiry at the deadline; bad input with nothing stored.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatPng;
use ChatChats;
use JSON::PP;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes ();
use Compress::Zlib ();
use File::Temp qw(tempdir);

our ($Root, $Secret, $ExpiryConf);

BEGIN {
    # outside the server root, which Test::Nginx removes between blocks
    $Root = tempdir(CLEANUP => 1);
    chmod 0777, $Root;
    $ENV{TEST_NGINX_MEDIA_ROOT} = $Root;
    $Secret = "media-secret-0123456789abcdef0123456789";

    my $media = qq{chat_media_url_secret "$Secret";
    chat_media_root \$TEST_NGINX_MEDIA_ROOT;
    chat_story_post_limit 1000 1h;};

    ChatChats::init("661", $media);

    # two users beyond the five of ChatChats
    my $run = $$ % 10000;
    $ChatChats::Phone{frank} = sprintf("+1628661%04d", ($run + 5) % 10000);
    $ChatChats::Phone{gina} = sprintf("+1628661%04d", ($run + 6) % 10000);

    $ExpiryConf = ChatTest::chat_http_config() . qq{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:\$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
    chat_story_lifetime 3s;
    chat_story_post_limit 1000 1h;
};
}

*Id = \%ChatChats::Id;
our (%Id, %Story, $Got);

our @Viewers = qw(alice bob carol dave erin frank gina);
our @Modes = qw(everyone contacts except only);

sub call { ChatChats::call(@_) }
sub api { ChatChats::api(@_) }

# a PNG of w x h, unique by its seed
sub png {
    return ChatPng::png(@_);
}

sub upload {
    my ($who, $body) = @_;
    my $r = HTTP::Tiny->new->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/media",
        { headers => { 'Content-Type' => 'application/octet-stream',
                       Authorization => "Bearer "
                           . $ChatChats::Tok{$who}{accessToken} },
          content => $body });
    return decode_json($r->{content})->{media}{id};
}

# the users, their contacts and blocks, and alice's four stories
sub setup {
    return if %Story;
    ChatChats::setup(qw(dave erin frank gina));
    for my $who (@Viewers) {
        api($who => PUT => "/api/users/profile", { name => "\u$who" });
    }
    # alice's contacts (what "contacts" means for her stories) ...
    for my $who (qw(bob carol dave frank gina)) {
        api(alice => POST => "/api/users/add-contact", { userId => $Id{$who} });
    }
    # ... and whose contact she is (whose feeds she is in)
    for my $who (qw(bob carol dave erin frank gina)) {
        api($who => POST => "/api/users/add-contact", { userId => $Id{alice} });
    }
    api(alice => POST => "/api/users/$Id{frank}/block");
    api(gina => POST => "/api/users/$Id{alice}/block");

    my %privacy = (
        everyone => { mode => "everyone" },
        contacts => { mode => "contacts" },
        except => { mode => "contacts_except", userIds => [ $Id{carol} ] },
        only => { mode => "only",
                  userIds => [ $Id{dave}, $Id{frank}, $Id{gina} ] },
    );
    for my $m (@Modes) {
        my $b = api(alice => POST => "/api/stories", { type => "text",
            text => "story $m", backgroundColor => "#112233",
            font => "serif", privacy => $privacy{$m} });
        $Story{$m} = $b->{story}{id};
    }
}

# Y or N per mode, by a 2xx status
sub yn { join "", map { $_ =~ /^2/ ? "Y" : "N" } @_ }

sub matrix {
    my ($f) = @_;
    return join "", map { "$_ " . $f->($_) . "\n" } @Viewers;
}

our $Matrix = <<'_EOM_';
alice YYYY
bob YYYN
carol YYNN
dave YYYY
erin YNNN
frank NNNN
gina NNNN
_EOM_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a text story for each privacy mode: 201 with the story
--- init
main::setup();
my ($s, $b) = main::call(alice => GET => "/api/stories/$main::Story{except}");
my $st = $b->{story};
$main::Got = join " ", $s, $st->{type}, $st->{text}, $st->{backgroundColor},
    $st->{font}, $st->{privacy}{mode},
    join(",", @{ $st->{privacy}{userIds} }) eq $main::Id{carol} ? "list" : "?",
    $st->{authorId} eq $main::Id{alice} ? "mine" : "?",
    ($st->{createdAt} =~ /^\d{4}-\d\d-\d\dT[\d:]+\.\d{3}Z$/ ? "time" : "?"),
    (exists $st->{expiresAt} ? "expires" : "?");
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
200 text story except #112233 serif contacts_except list mine time expires
--- error_code: 200



=== TEST 2: a single story: who may see each mode
--- init
$main::Got = main::matrix(sub {
    my $who = shift;
    main::yn(map { (main::call($who => GET => "/api/stories/$main::Story{$_}"))[0] } @main::Modes);
});
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body eval
$main::Matrix
--- error_code: 200



=== TEST 3: a user's stories: the same matrix, a stranger's ids 404-free
--- init
$main::Got = main::matrix(sub {
    my $who = shift;
    my $b = ChatChats::api($who => GET => "/api/users/$main::Id{alice}/stories");
    my %have = map { $_->{text} => 1 } @{ $b->{items} };
    join "", map { $have{"story $_"} ? "Y" : "N" } @main::Modes;
});
ChatChats::dyn($block, as => "alice", request => "GET /api/users/nothex/stories",
    error_code => 404);
--- response_body_filters eval
sub { $main::Got }
--- response_body eval
$main::Matrix



=== TEST 4: the feed: alice's stories in her contacts' feeds, by privacy
--- init
$main::Got = main::matrix(sub {
    my $who = shift;
    my $b = ChatChats::api($who => GET => "/api/stories");
    my ($g) = grep { $_->{user}{id} eq $main::Id{alice} } @{ $b->{items} };
    my %have = map { $_->{text} => 1 } @{ $g ? $g->{stories} : [] };
    # the author's own stories are in /api/stories/mine, not the feed
    $who eq "alice" && !$g ? "YYYY"
        : join "", map { $have{"story $_"} ? "Y" : "N" } @main::Modes;
});
ChatChats::dyn($block, as => "alice", request => "GET /api/stories");
--- response_body_filters eval
sub { $main::Got }
--- response_body eval
$main::Matrix
--- error_code: 200



=== TEST 5: views: the matrix, once per viewer (201 then 200), the author's look is none
--- init
my %first;
$main::Got = main::matrix(sub {
    my $who = shift;
    my @s = map { (main::call($who => POST => "/api/stories/$main::Story{$_}/view"))[0] } @main::Modes;
    $first{$who} = join ",", @s;
    main::yn(@s);
});
my @again = map { (main::call(dave => POST => "/api/stories/$main::Story{$_}/view"))[0] } @main::Modes;
my ($s, $b) = main::call(bob => POST => "/api/stories/$main::Story{everyone}/view");
$main::Got .= "first dave $first{dave} alice $first{alice}\n"
    . "again dave @again\n"
    . "view " . join(",", sort keys %{ $b->{view} }) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body eval
$main::Matrix . "first dave 201,201,201,201 alice 200,200,200,200\n"
. "again dave 200 200 200 200\nview storyId,userId,viewedAt\n"
--- error_code: 200



=== TEST 6: the author's view list: viewers with their time, others get 404
--- init
my %name = map { $main::Id{$_} => $_ } @main::Viewers;
$main::Got = join "", map {
    my $b = ChatChats::api(alice => GET => "/api/stories/$main::Story{$_}/views");
    "$_ " . join(",", sort map { $name{$_->{userId}} . ($_->{viewedAt} ? "" : "?") } @{ $b->{items} }) . "\n";
} @main::Modes;
$main::Got .= "bob " . (main::call(bob => GET => "/api/stories/$main::Story{everyone}/views"))[0] . "\n";
my $mine = ChatChats::api(alice => GET => "/api/stories/mine");
$main::Got .= "counts " . join(",", map { $_->{viewCount} } @{ $mine->{items} }) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
everyone bob,carol,dave,erin
contacts bob,carol,dave
except bob,dave
only dave
bob 404
counts 4,3,2,1
--- error_code: 200



=== TEST 7: reactions: the matrix, replaced, removed; the author cannot react
--- init
my $heart = "\x{2764}\x{fe0f}";
$main::Got = main::matrix(sub {
    my $who = shift;
    return "YYYY" if $who eq "alice";
    main::yn(map { (main::call($who => POST => "/api/stories/$main::Story{$_}/react", { emoji => $heart }))[0] } @main::Modes);
});
my ($own) = main::call(alice => POST => "/api/stories/$main::Story{everyone}/react", { emoji => $heart });
main::call(bob => POST => "/api/stories/$main::Story{everyone}/react", { emoji => "\x{1f602}" });
my ($del) = main::call(carol => DELETE => "/api/stories/$main::Story{everyone}/react");
my %name = map { $main::Id{$_} => $_ } @main::Viewers;
my $b = ChatChats::api(alice => GET => "/api/stories/$main::Story{everyone}/views");
my %r = map { $name{$_->{userId}} => ($_->{reaction} // "-") } @{ $b->{items} };
$main::Got .= "own $own del $del\n" . join("", map { "$_ " . ($r{$_} eq $heart ? "heart" : $r{$_} eq "\x{1f602}" ? "joy" : $r{$_}) . "\n" } sort keys %r);
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body eval
$main::Matrix . "own 403 del 200\nbob joy\ncarol -\ndave heart\nerin heart\n"
--- error_code: 200



=== TEST 8: the feed: seen per story, authors with unseen stories first, pages by author
--- init
ChatChats::api(bob => POST => "/api/users/add-contact", { userId => $main::Id{carol} });
ChatChats::api(alice => POST => "/api/stories", { type => "text", text => "later" });
my $c = ChatChats::api(carol => POST => "/api/stories", { type => "text", text => "carol's" });
my $f = ChatChats::api(bob => GET => "/api/stories");
my %name = map { $main::Id{$_} => $_ } @main::Viewers;
$main::Got = join "", map {
    my $g = $_;
    $name{$g->{user}{id}} . " " . $g->{user}{name} . " "
    . ($g->{hasUnseen} ? "unseen" : "seen") . " "
    . join(",", map { $_->{text} . ":" . ($_->{seen} ? 1 : 0) } @{ $g->{stories} }) . "\n";
} @{ $f->{items} };
my $p1 = ChatChats::api(bob => GET => "/api/stories?limit=1");
my $p2 = ChatChats::api(bob => GET => "/api/stories?limit=1&cursor=$p1->{nextCursor}");
$main::Got .= "pages " . $name{$p1->{items}[0]{user}{id}} . " "
    . $name{$p2->{items}[0]{user}{id}} . " "
    . (exists $p2->{nextCursor} ? "more" : "end") . "\n";
ChatChats::api(bob => POST => "/api/stories/$c->{story}{id}/view");
$f = ChatChats::api(bob => GET => "/api/stories");
$main::Got .= "then " . join(" ", map { $name{$_->{user}{id}} } @{ $f->{items} }) . "\n";
ChatChats::dyn($block, as => "bob", request => "GET /api/stories");
--- response_body_filters eval
sub { $main::Got }
--- response_body
carol Carol unseen carol's:0
alice Alice unseen story everyone:1,story contacts:1,story except:1,later:0
pages carol alice end
then alice carol
--- error_code: 200



=== TEST 9: concurrent views of one story store one view
--- init
my $s = ChatChats::api(alice => POST => "/api/stories", { type => "text", text => "race" });
my $id = $s->{story}{id};
my @kids;
for (1 .. 8) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my ($st) = main::call(dave => POST => "/api/stories/$id/view");
        POSIX::_exit($st == 201 ? 1 : $st == 200 ? 2 : 3);
    }
    push @kids, $pid;
}
my %codes;
for (@kids) { waitpid($_, 0); $codes{$? >> 8}++ }
my $v = ChatChats::api(alice => GET => "/api/stories/$id/views");
$main::Got = "created " . ($codes{1} // 0) . " again " . ($codes{2} // 0)
    . " other " . ($codes{3} // 0) . " views " . scalar(@{ $v->{items} }) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
created 1 again 7 other 0 views 1
--- error_code: 200



=== TEST 10: a block after a view hides that view; unblocked, it is back
--- init
my %name = map { $main::Id{$_} => $_ } @main::Viewers;
my $list = sub {
    my $b = ChatChats::api(alice => GET => "/api/stories/$main::Story{everyone}/views");
    join ",", sort map { $name{$_->{userId}} } @{ $b->{items} };
};
ChatChats::api(erin => POST => "/api/users/$main::Id{alice}/block");
my $blocked = $list->();
my ($get) = main::call(erin => GET => "/api/stories/$main::Story{everyone}");
ChatChats::api(erin => DELETE => "/api/users/$main::Id{alice}/block");
$main::Got = "blocked $blocked get $get\nafter " . $list->() . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
blocked bob,carol,dave get 404
after bob,carol,dave,erin
--- error_code: 200



=== TEST 11: media stories: the type must be the upload's detected type
--- init
my $png = main::upload(alice => main::png(4, 3, $$));
my @r = (
    [ { type => "image", mediaId => $png, caption => "a picture" } ],
    [ { type => "video", mediaId => $png } ],
    [ { type => "image", mediaId => "0123456789abcdef01234567" } ],
);
$main::Got = join "", map {
    my ($s, $b) = main::call(alice => POST => "/api/stories", $_->[0]);
    "$s " . ($s == 201 ? "$b->{story}{type} $b->{story}{caption} "
                         . ($b->{story}{mediaId} eq $png ? "media" : "?")
                       : "$b->{error}{code} $b->{error}{details}{field}") . "\n";
} @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
201 image a picture media
422 invalid_value mediaId
422 invalid_value mediaId
--- error_code: 200



=== TEST 12: bad input: the error envelope, nothing stored
--- init
my $before = scalar @{ ChatChats::api(alice => GET => "/api/stories/mine")->{items} };
my $long = "x" x 701;
my @bad = (
    [ {}, 400, "type is required" ],
    [ { type => 5, text => "a" }, 400, "type must be a string" ],
    [ { type => "audio", text => "a" }, 400, "type must be text, image or video" ],
    [ { type => "text" }, 400, "text is required" ],
    [ { type => "text", text => "" }, 400, "text must not be empty" ],
    [ { type => "text", text => 7 }, 400, "text must be a string" ],
    [ { type => "text", text => $long }, 400, "text is too long" ],
    [ { type => "text", text => "a\x{1}b" }, 400, "text has control characters" ],
    [ { type => "text", text => "a", backgroundColor => "red" }, 400, "backgroundColor must be a colour as #rrggbb" ],
    [ { type => "text", text => "a", backgroundColor => "#12345g" }, 400, "backgroundColor must be a colour as #rrggbb" ],
    [ { type => "text", text => "a", backgroundColor => 1 }, 400, "backgroundColor must be a string" ],
    [ { type => "text", text => "a", font => "x" x 33 }, 400, "font is too long" ],
    [ { type => "text", text => "a", font => "a;b" }, 400, "font must be a name" ],
    [ { type => "text", text => "a", mediaId => "0123456789abcdef01234567" }, 400, "mediaId is not for a text story" ],
    [ { type => "text", text => "a", caption => "c" x 201 }, 400, "caption is too long" ],
    [ { type => "text", text => "a", caption => [] }, 400, "caption must be a string" ],
    [ { type => "image" }, 400, "mediaId is required" ],
    [ { type => "image", mediaId => "xyz" }, 400, "mediaId must be an id" ],
    [ { type => "image", mediaId => { '$gt' => "" } }, 400, "mediaId must be a string" ],
    [ { type => "image", mediaId => "0123456789abcdef01234567", text => "a" }, 400, "text is only for a text story" ],
    [ { type => "image", mediaId => "0123456789abcdef01234567", font => "serif" }, 400, "font is only for a text story" ],
    [ { type => "text", text => "a", privacy => "everyone" }, 400, "privacy must be an object" ],
    [ { type => "text", text => "a", privacy => {} }, 400, "privacy.mode is required" ],
    [ { type => "text", text => "a", privacy => { mode => "friends" } }, 400, "privacy.mode must be everyone" ],
    [ { type => "text", text => "a", privacy => { mode => "only" } }, 400, "privacy.userIds must be an array" ],
    [ { type => "text", text => "a", privacy => { mode => "only", userIds => [] } }, 400, "privacy.userIds must hold 1 to 256" ],
    [ { type => "text", text => "a", privacy => { mode => "only", userIds => [ "nothex" ] } }, 400, "privacy.userIds must hold ids of 24" ],
    [ { type => "text", text => "a", privacy => { mode => "only", userIds => [ 5 ] } }, 400, "privacy.userIds must hold ids, as strings" ],
    [ { type => "text", text => "a", privacy => { mode => "only", userIds => [ ($main::Id{bob}) x 2 ] } }, 400, "privacy.userIds must not hold an id twice" ],
    [ { type => "text", text => "a", privacy => { mode => "only", userIds => [ map { sprintf "%024x", $_ } 1 .. 257 ] } }, 400, "privacy.userIds must hold 1 to 256" ],
    [ { type => "text", text => "a", privacy => { mode => "everyone", userIds => [ $main::Id{bob} ] } }, 400, "privacy.userIds is only for" ],
);
my @out;
for my $c (@bad) {
    my ($s, $b) = main::call(alice => POST => "/api/stories", $c->[0]);
    my $msg = ref $b ? "$b->{error}{code}: $b->{error}{message}" : $b;
    push @out, "$s $msg" unless $s == $c->[1] && ref $b
        && $b->{error}{code} eq "invalid_request"
        && index($b->{error}{message}, $c->[2]) >= 0;
}
my $story = $main::Story{everyone};
for my $c ([ {}, 400 ], [ { emoji => 5 }, 400 ], [ { emoji => "" }, 400 ],
           [ { emoji => "abc" }, 422 ], [ { emoji => "x" x 40 }, 400 ]) {
    my ($s, $b) = main::call(bob => POST => "/api/stories/$story/react", $c->[0]);
    push @out, "react $s" unless $s == $c->[1] && ref $b && $b->{error}{code};
}
for my $p ("/api/stories/nothex", "/api/stories/0123456789abcdef01234567",
           "/api/stories/nothex/views", "/api/stories/0123456789abcdef01234567/view") {
    my ($s) = main::call(bob => ($p =~ /view$/ ? "POST" : "GET") => $p);
    push @out, "$p $s" unless $s == 404;
}
for my $q ("limit=0", "limit=51", "limit=x", "cursor=-1", "cursor=abc") {
    my ($s) = main::call(bob => GET => "/api/stories?$q");
    push @out, "$q $s" unless $s == 400;
}
my $after = scalar @{ ChatChats::api(alice => GET => "/api/stories/mine")->{items} };
$main::Got = join("", map { "$_\n" } @out) . "stored " . ($after - $before) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
stored 0
--- error_code: 200



=== TEST 13: delete: the author's only; gone with its views
--- init
my $s = ChatChats::api(alice => POST => "/api/stories", { type => "text", text => "to delete" });
my $id = $s->{story}{id};
ChatChats::api(bob => POST => "/api/stories/$id/view");
my @r = (
    (main::call(bob => DELETE => "/api/stories/$id"))[0],
    (main::call(alice => DELETE => "/api/stories/$id"))[0],
    (main::call(alice => GET => "/api/stories/$id"))[0],
    (main::call(bob => GET => "/api/stories/$id"))[0],
    (main::call(alice => GET => "/api/stories/$id/views"))[0],
    (main::call(alice => DELETE => "/api/stories/$id"))[0],
);
$main::Got = "@r\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
404 200 404 404 404 404
--- error_code: 200



=== TEST 14: events: story_created to those who may see it, story_viewed and story_reacted to the author, story_deleted to who saw it; plain and Socket.IO
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
--- init
use ChatRT;
use ChatWS;
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
my $e = ChatRT::connect("erin");
# carol on Socket.IO, by hand over its websocket transport
my ($c, $st) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
ChatWS::read_frame($c, 3);
ChatWS::text($c, qq(40{"token":"$ChatChats::Tok{carol}{accessToken}"}));
while (my $f = ChatWS::read_frame($c, 3)) {
    last if $f->{payload} =~ /^42\["authenticated"/;
}
my $sio = sub {
    my ($name) = @_;
    while (my $f = ChatWS::read_frame($c, 3)) {
        next unless $f->{payload} =~ /^42(.*)$/s;
        my $p = JSON::PP::decode_json($1);
        return $p->[1] if $p->[0] eq $name;
    }
    return undef;
};
my $s1 = ChatChats::api(alice => POST => "/api/stories",
    { type => "text", text => "for contacts", privacy => { mode => "contacts" } })->{story}{id};
my $s2 = ChatChats::api(alice => POST => "/api/stories",
    { type => "text", text => "for all" })->{story}{id};
my @r;
my $x = ChatRT::wait_for($b, "story_created", 3);
push @r, "bob " . ($x && $x->{data}{story}{id} eq $s1 ? "contacts" : "?")
    . ($x && !exists $x->{data}{story}{privacy} ? "" : " privacy?");
# the stranger's first one is the story for all: none for contacts
$x = ChatRT::wait_for($e, "story_created", 3);
push @r, "erin " . ($x && $x->{data}{story}{id} eq $s2 ? "all" : "?");
$x = $sio->("story_created");
push @r, "carol " . ($x && $x->{story}{id} eq $s1 ? "contacts" : "?");
ChatChats::api(bob => POST => "/api/stories/$s1/view");
ChatChats::api(bob => POST => "/api/stories/$s1/view");
$x = ChatRT::wait_for($a, "story_viewed", 3);
push @r, "viewed " . ($x && $x->{data}{storyId} eq $s1
    && $x->{data}{userId} eq $main::Id{bob} && $x->{data}{viewedAt} ? "bob" : "?");
ChatChats::api(bob => POST => "/api/stories/$s1/react", { emoji => "\x{1f525}" });
$x = ChatRT::wait_for($a, "story_reacted", 3);
# the second view sent nothing: the next event is the reaction
# ChatRT decodes frames as characters of their bytes: the emoji's UTF-8
push @r, "reacted " . ($x && $x->{data}{emoji} eq "\xf0\x9f\x94\xa5" ? "fire" : "?");
ChatChats::api(carol => POST => "/api/stories/$s1/view");
$x = ChatRT::wait_for($a, "story_viewed", 3);
push @r, "viewed " . ($x && $x->{data}{userId} eq $main::Id{carol} ? "carol" : "?");
ChatChats::api(alice => DELETE => "/api/stories/$s1");
$x = ChatRT::wait_for($b, "story_deleted", 3);
push @r, "deleted " . ($x && $x->{data}{storyId} eq $s1 ? "bob" : "?");
$x = $sio->("story_deleted");
push @r, "deleted " . ($x && $x->{storyId} eq $s1 ? "carol" : "?");
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
bob contacts
erin all
carol contacts
viewed bob
reacted fire
viewed carol
deleted bob
deleted carol
--- error_code: 200



=== TEST 15: expiry (chat_story_lifetime 3s): gone from every read at the deadline
--- http_config eval: $main::ExpiryConf
--- init
my $s = ChatChats::api(alice => POST => "/api/stories", { type => "text", text => "brief" });
my $id = $s->{story}{id};
my $reads = sub {
    my $f = ChatChats::api(bob => GET => "/api/stories");
    my $u = ChatChats::api(bob => GET => "/api/users/$main::Id{alice}/stories");
    my $m = ChatChats::api(alice => GET => "/api/stories/mine");
    my $in = sub { (grep { $_->{id} eq $id } @_) ? 1 : 0 };
    join " ",
        (main::call(bob => GET => "/api/stories/$id"))[0],
        $in->(map { @{ $_->{stories} } } @{ $f->{items} }),
        $in->(@{ $u->{items} }), $in->(@{ $m->{items} }),
        (main::call(alice => GET => "/api/stories/$id/views"))[0];
};
my $before = $reads->();
# a whole second past the deadline, whatever the clock's granularity
Time::HiRes::sleep(4.2);
my $after = $reads->();
my @w = ((main::call(bob => POST => "/api/stories/$id/view"))[0],
         (main::call(bob => POST => "/api/stories/$id/react", { emoji => "\x{1f44d}" }))[0]);
$main::Got = "before $before\nafter $after @w\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
before 200 1 1 1 200
after 404 0 0 0 404 404 404
--- error_code: 200
