<?php
// Router for PHP's built-in server in front of Debian's Adminer (/usr/share/adminer).
// It serves Adminer only: its page (/adminer/) and its own static assets. Every other
// script of the package (compile.php, coverage.php, editor/, plugins/, *.inc.php, ...)
// answers 404, so a request can never run code Adminer's page does not run itself.
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '');
if ($path === '/') {
    header('Location: /adminer/', true, 302);
    return true;
}
if ($path === '/adminer/' || $path === '/adminer/index.php') {
    return false;  // the built-in server runs /usr/share/adminer/adminer/index.php
}
$asset = '~^/(adminer/static|externals/jush)/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.(css|js|gif|png|ico)$~';
if (preg_match($asset, $path) === 1) {
    return false;  // a static file, served as it is
}
http_response_code(404);
header('Content-Type: text/plain; charset=utf-8');
echo "404 Not Found: this server serves Adminer only (/adminer/)\n";
return true;
