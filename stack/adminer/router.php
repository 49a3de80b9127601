<?php
// Router for PHP's built-in server in front of Debian's Adminer (/usr/share/adminer):
// "/" goes to the Adminer page; every existing file is served as it is.
if (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) === '/') {
    header('Location: /adminer/', true, 302);
    return true;
}
return false;
